"""`validate_file`: every kind of input goes through the pipeline's own reader.

Good files are real bundled files (or slices of them); bad files are those slices with one
line broken, and each error must be one line naming the file and that line.
"""
import gzip

import pytest

from genesplice.cli import main
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.training.validate import FORMATS, guess_format, validate_file
from tests.textfiles import write_text


def _head(rel: str, n: int) -> list[str]:
    """The first ``n`` lines of a bundled file (real data)."""
    with gzip.open(knowledge_path(rel), "rt") as fh:
        return [next(fh).rstrip("\n") for _ in range(n)]


TSS = "coords/tss_hg38.tsv.gz"                   # gene_symbol ensembl_id chrom tss strand source
BED = "coords/xpresso_hg38_promoters_cage_corrected_pm10kb.bed.gz"
OBO_HEAD = ("format-version: 1.2\n\n[Term]\nid: GO:0008150\nname: biological_process\n"
            "namespace: biological_process\n\n[Term]\nid: GO:0000001\nname: x\n"
            "namespace: biological_process\n")


@pytest.mark.parametrize("rel,fmt", [
    ("annotations/trrust_human.tsv.gz", "trrust"),
    ("annotations/ReactomePathways_2021-02.gmt.gz", "gmt"),
    ("annotations/reactome_pathways_relation_human.tsv.gz", "reactome-hierarchy"),
    ("annotations/reactome_pathways_human.tsv.gz", "reactome-names"),
    ("coords/xpresso_hg38_promoters_cage_corrected_pm10kb.bed.gz", "bed"),
    ("coords/tss_hg38.tsv.gz", "tss"),
    ("coords/epdnew_hs_core_promoters_m49_p10.fa.gz", "fasta"),
    ("sequence/GRCh38_chr17_9958130-12017414.fa.gz", "fasta"),
    ("sequence/GRCh38_chr17_9958130-12017414.fa.gz.fai", "fai"),
])
def test_real_files_validate(rel, fmt):
    line = validate_file(knowledge_path(rel))
    assert f"OK ({fmt})" in line and "\n" not in line


def test_recipe_and_config_validate():
    root = knowledge_path("").parent
    assert "OK (recipe)" in validate_file(root / "graphs/human_default.toml")
    assert "OK (config)" in validate_file(root / "configs/default.toml")


def test_guess_from_name_and_header(tmp_path):
    assert guess_format("x.gaf.gz") == "gaf"
    assert guess_format("x.fa") == "fasta"
    assert guess_format("x.gtf") == "gtf"
    assert guess_format("x.fa.fai") == "fai"
    assert guess_format("x.vcf.gz") == "vcf"
    tss = write_text(tmp_path / "a.tsv", "\n".join(_head(TSS, 3)) + "\n")
    assert guess_format(tss) == "tss"
    expr = write_text(tmp_path / "e.txt", "gene_symbol\tliver\tlung\nTP53\t1.5\t0\n")
    assert guess_format(expr) == "expression"
    var = write_text(tmp_path / "v.tsv", "chrom\tpos\tref\talt\nchr17\t10\tA\tG\n")
    assert guess_format(var) == "variants"
    rel = write_text(tmp_path / "r.txt", "R-HSA-1\tR-HSA-2\n")
    assert guess_format(rel) == "reactome-hierarchy"
    recipe = write_text(tmp_path / "g.toml", "[go]\nmin_genes = 5\n")
    config = write_text(tmp_path / "c.toml", "[train]\nepochs = 1\n")
    assert guess_format(recipe) == "recipe" and guess_format(config) == "config"
    other = write_text(tmp_path / "o.tsv", "a\tb\n1\t2\n")
    with pytest.raises(GeneSpliceInputError, match="--format"):
        guess_format(other)
    with pytest.raises(GeneSpliceInputError, match="--format"):
        guess_format(write_text(tmp_path / "x.unknown", "x"))
    with pytest.raises(GeneSpliceInputError, match="unknown format"):
        validate_file(other, "tsvx")
    assert set(FORMATS) >= {"obo", "gaf", "gmt", "tss", "expression", "bed", "gtf", "fasta",
                            "vcf", "recipe", "config", "trrust", "dorothea"}


def _tss_with(tmp_path, name, col, value, row=2):
    lines = _head(TSS, 4)
    head = lines[0].split("\t")
    fields = lines[row].split("\t")
    fields[head.index(col)] = value
    lines[row] = "\t".join(fields)
    return write_text(tmp_path / name, "\n".join(lines) + "\n")


def _bad_cases(tmp_path):
    bed = _head(BED, 3)
    gtf_ok = 'chr1\tHAVANA\tgene\t11869\t14409\t.\t+\t.\tgene_id "ENSG00000223972.5"; level 2;'
    vcf = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    return [
        (_tss_with(tmp_path, "star.tsv", "strand", "*"), ":3: strand must be '+' or '-'"),
        (_tss_with(tmp_path, "nostrand.tsv", "strand", ""), ":3: empty value in required column "
                                                            "'strand'"),
        (_tss_with(tmp_path, "neg.tsv", "tss", "-5"), ":3: TSS position must be a non-negative"),
        (write_text(tmp_path / "short.bed", "\n".join(bed[:2] + ["chr1\t10\t20"]) + "\n"),
         ":3: expected at least 6"),
        (write_text(tmp_path / "swap.bed", bed[0] + "\nX\t200\t100\tG\t0\t+\n"),
         ":2: expected start < end"),
        (write_text(tmp_path / "attr.gtf", gtf_ok + "\n" + gtf_ok.replace(
            'gene_id "ENSG00000223972.5";', "gene_id=ENSG00000223972") + "\n"),
         ":2: expected attributes as 'key \"value\";'"),
        (write_text(tmp_path / "coords.gtf", gtf_ok.replace("11869", "0") + "\n"),
         ":1: GTF start (column 4) must be >= 1"),
        (write_text(tmp_path / "dangling.obo", OBO_HEAD + "is_a: GO:9999999 ! nowhere\n"),
         ":12: term GO:0000001 has is_a GO:9999999, which is not defined"),
        (write_text(tmp_path / "part.obo", OBO_HEAD + "relationship: part_of GO:7777777\n"),
         ":12: term GO:0000001 has part_of GO:7777777"),
        (write_text(tmp_path / "pos.vcf", vcf + "17\t-3\t.\tA\tG\t.\t.\t.\n"),
         ":3: pos must be a 1-based integer"),
        (write_text(tmp_path / "ref.vcf", vcf + "17\t5\t.\tA\tG\t.\t.\t.\n17\t6\t.\tQ\tG\t.\t.\t.\n"),
         ":4: variant 17:6:Q>G: ref must be bases"),
        (write_text(tmp_path / "alt.vcf", vcf + "17\t5\t.\tA\tG,XZ\t.\t.\t.\n"),
         ":3: variant 17:5:A>XZ: alt must be bases"),
        (write_text(tmp_path / "fields.vcf", vcf + "17\t5\t.\tA\tG\t.\t.\t.\n17\t5\n"),
         ":4: empty or missing chrom, pos, ref or alt"),
        (write_text(tmp_path / "cyc.txt", "R-HSA-1\tR-HSA-2\nR-HSA-2\tR-HSA-3\nR-HSA-3\tR-HSA-1\n"),
         "pathway hierarchy has a cycle"),
        (write_text(tmp_path / "bad.fa", ">s1\nACGT\nACXT\n"), ":3: unexpected character 'X'"),
        (write_text(tmp_path / "nohead.fa", "ACGT\n"), ":1: expected a '>' header"),
        (write_text(tmp_path / "bad.gmt", "set\tdesc\n"), ":1: gene set 'set' has no genes"),
    ]


def test_malformed_files_name_the_line(tmp_path):
    for path, where in _bad_cases(tmp_path):
        with pytest.raises(GeneSpliceInputError) as exc:
            validate_file(path)
        msg = str(exc.value)
        assert msg.startswith(str(path)) and where in msg and "\n" not in msg, (path, msg)


def test_expression_cells_are_checked_by_the_reader(tmp_path):
    head = "ensembl_id\tgene_symbol\tliver\tlung\n"
    for name, row in [("text.tsv", "ENSG1\tA\t1.0\thigh\n"), ("neg.tsv", "ENSG1\tA\t-1\t2\n")]:
        p = write_text(tmp_path / name, head + "ENSG0\tB\t1\t2\n" + row)
        with pytest.raises(GeneSpliceInputError) as exc:
            validate_file(p, "expression")
        assert str(exc.value).startswith(f"{p}:3"), str(exc.value)


def test_not_text_and_broken_gzip_are_one_line(tmp_path):
    good = "\n".join(_head(TSS, 3)).encode() + b"\n"
    binary = tmp_path / "junk.tsv"
    binary.write_bytes(good + b"\xff\xfe\x00binary\n")
    fake_gz = tmp_path / "fake.tsv.gz"
    fake_gz.write_bytes(good)
    cut = tmp_path / "cut.tsv.gz"
    cut.write_bytes(gzip.compress(good * 50)[:60])
    named = tmp_path / "named.tsv"
    named.write_bytes(gzip.compress(good))
    cases = [(binary, "tss", ":4: not UTF-8 text"), (fake_gz, "tss", "not a gzip file"),
             (cut, "tss", "not a readable gzip file"), (named, "tss", "gzip-compressed"),
             (cut, "obo", "not a readable gzip file"), (binary, "gmt", ":4: not UTF-8"),
             (fake_gz, "gaf", "not a gzip file"), (binary, "fasta", ":4: not UTF-8")]
    for path, fmt, where in cases:
        with pytest.raises(GeneSpliceInputError) as exc:
            validate_file(path, fmt)
        assert where in str(exc.value) and "\n" not in str(exc.value), (path, fmt, exc.value)


def test_gz_and_empty(tmp_path):
    p = write_text(tmp_path / "ok.tsv.gz", "\n".join(_head(TSS, 3)) + "\n", gz=True)
    assert "TSS table: 2 genes" in validate_file(p)
    for e in (write_text(tmp_path / "empty.tsv", ""), write_text(tmp_path / "e.tsv.gz", "", gz=True)):
        with pytest.raises(GeneSpliceInputError, match="empty"):
            validate_file(e, "tss")


def test_recipe_input_paths_are_checked(tmp_path):
    p = write_text(tmp_path / "r.toml", '[go]\nobo = "/nonexistent/go.obo"\n')
    with pytest.raises(GeneSpliceInputError, match=r"r.toml: key 'go.obo': .*file not found"):
        validate_file(p)
    c = write_text(tmp_path / "c.toml", '[data]\nexpression_path = "/nonexistent/e.tsv"\n')
    with pytest.raises(GeneSpliceInputError, match=r"c.toml: key 'data.expression_path'"):
        validate_file(c)


def test_cli_validate_every_file_one_line_each(tmp_path, capsys):
    good = knowledge_path("annotations/reactome_pathways_relation_human.tsv.gz")
    bad = _tss_with(tmp_path, "star.tsv", "strand", "*")
    assert main(["validate", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{good}: OK (reactome-hierarchy)")
    err = captured.err.strip()
    assert err.startswith(f"genesplice: error: {bad}:3: strand") and "\n" not in err
