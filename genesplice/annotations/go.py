"""Gene Ontology: the ontology (OBO via obonet) and gene annotations (GAF 2.x via pandas).

- :func:`read_go_obo` -> :class:`GeneOntology` (terms with name/namespace/obsolete flag, typed
  child->parent relations, alt_id map). ``has_part`` is excluded by default: it points from the
  whole to the part, against the direction of the other relations, and closes cycles.
- :func:`read_gaf` -> annotations DataFrame + :class:`ParseReport`. 17 tab-separated columns
  are required (checked per line, vectorised); ``NOT`` qualifiers are excluded by default;
  evidence-code and namespace filters; ids resolved through the one :class:`GeneResolver`;
  optional true-path propagation to ancestors over ``is_a``/``part_of``.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import obonet
import pandas as pd
from obonet.read import parse_tag_line

from genesplice.annotations.ids import GeneResolver, default_resolver
from genesplice.annotations.ontology import Ancestors, build_ancestors, expand
from genesplice.annotations.report import ParseReport
from genesplice.io.constants import GO_GAF, GO_OBO
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.pause_gc import paused_gc
from genesplice.io.tables import check_field_counts, read_bytes, scan_lines
from genesplice.io.text import open_text

DEFAULT_RELATIONS = ("is_a", "part_of", "regulates", "positively_regulates",
                     "negatively_regulates")
PROPAGATE_RELATIONS = ("is_a", "part_of")
NAMESPACES = {"P": "biological_process", "F": "molecular_function", "C": "cellular_component"}
#: the three namespaces, in the order of their codes (``go_term.namespace`` 0, 1, 2)
GO_NAMESPACES = tuple(NAMESPACES.values())
ROOTS = {"GO:0008150": "biological_process", "GO:0003674": "molecular_function",
         "GO:0005575": "cellular_component"}
#: regulates-family relation -> sign
REGULATES_SIGN = {"regulates": 0, "positively_regulates": 1, "negatively_regulates": -1}

#: GO evidence codes by group (http://geneontology.org/docs/guide-go-evidence-codes/);
#: the default recipe excludes ND and the expression-pattern codes IEP / HEP
EVIDENCE_GROUPS = {
    "experimental": ("EXP", "IDA", "IPI", "IMP", "IGI", "IEP", "HTP", "HDA", "HMP", "HGI", "HEP"),
    "phylogenetic": ("IBA", "IBD", "IKR", "IRD"),
    "computational": ("ISS", "ISO", "ISA", "ISM", "IGC", "RCA"),
    "author": ("TAS", "NAS"),
    "curator": ("IC", "ND"),
    "electronic": ("IEA",),
}
EVIDENCE_GROUP_OF = {code: g for g, codes in EVIDENCE_GROUPS.items() for code in codes}
GAF_COLUMNS = ("db", "db_object_id", "db_object_symbol", "qualifier", "go_id", "reference",
               "evidence", "with_from", "aspect", "db_object_name", "db_object_synonym",
               "db_object_type", "taxon", "date", "assigned_by", "annotation_extension",
               "gene_product_form_id")


# ---------------------------------------------------------------------------- OBO
@dataclass
class GeneOntology:
    """A parsed GO release."""
    terms: pd.DataFrame            # index go_id; columns name, namespace, obsolete
    edges: pd.DataFrame            # child, relation, parent (both ends are terms in ``terms``)
    alt_ids: dict[str, str]        # secondary id -> primary id
    version: str
    source: str
    report: ParseReport = field(repr=False, default=None)  # type: ignore[assignment]
    _anc: dict = field(default_factory=dict, repr=False)

    def name(self, go_id: str) -> str:
        return str(self.terms.at[go_id, "name"])

    def primary(self, ids: pd.Series) -> pd.Series:
        """Map alt_ids to primary ids (others unchanged)."""
        if not self.alt_ids:
            return ids
        mapped = ids.map(self.alt_ids)
        return ids.where(mapped.isna(), mapped)

    def dag(self, relations: Sequence[str] = PROPAGATE_RELATIONS) -> nx.DiGraph:
        e = self.edges[self.edges["relation"].isin(relations)]
        g = nx.DiGraph()
        g.add_nodes_from(self.terms.index)
        g.add_edges_from(zip(e["child"], e["parent"]))
        return g

    def ancestors(self, relations: Sequence[str] = PROPAGATE_RELATIONS) -> Ancestors:
        """Cached :class:`~genesplice.annotations.ontology.Ancestors` over the given relations."""
        key = tuple(sorted(relations))
        if key not in self._anc:
            e = self.edges[self.edges["relation"].isin(relations)]
            self._anc[key] = build_ancestors(list(self.terms.index), e["child"].to_numpy(),
                                             e["parent"].to_numpy(), what=f"GO {key}")
        return self._anc[key]


def _locate_obo_error(path: Path) -> tuple[int | None, str]:
    """Re-scan a file obonet rejected, with obonet's own tag-line parser, to find the line."""
    with open_text(path) as fh:
        stanza = None
        for n, line in enumerate(fh, 1):
            s = line.strip()
            if not s or s.startswith("!"):
                continue
            if s.startswith("["):
                if not s.endswith("]"):
                    return n, f"malformed stanza header {s!r}"
                stanza = s
                continue
            try:
                tag = parse_tag_line(line.rstrip("\n"))
            except ValueError:
                return n, f"expected 'tag: value', found {s[:60]!r}"
            if stanza == "[Term]" and tag.tag == "relationship" and \
                    len((tag.value or "").split(" ")) != 2:
                return n, f"expected 'relationship: <type> <term id>', found {s[:60]!r}"
    return None, "malformed OBO"


def _find_line(path: Path, needle: str) -> int | None:
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            if line.rstrip("\n") == needle:
                return n
    return None


def _check_references(g: nx.MultiDiGraph, path: Path) -> None:
    """An ``is_a`` / ``part_of`` to a term without a ``[Term]`` stanza is an error (its line)."""
    for child, parent, rel in g.edges(keys=True):
        if rel in PROPAGATE_RELATIONS and not g.nodes[parent]:
            tag = "is_a: " if rel == "is_a" else f"relationship: {rel} "
            line = None
            with open_text(path) as fh:
                for n, text in enumerate(fh, 1):
                    rest = text[len(tag) + len(parent):len(tag) + len(parent) + 1]
                    if text.startswith(tag + parent) and rest in ("", " ", "\n", "\r", "!"):
                        line = n
                        break
            raise GeneSpliceInputError(
                f"term {child} has {rel} {parent}, which is not defined in this file "
                "(expected a [Term] stanza with that id)", path=path, line=line)


def read_go_obo(path: str | os.PathLike | None = None, *,
                relations: Iterable[str] = DEFAULT_RELATIONS,
                include_obsolete: bool = False) -> GeneOntology:
    """Read a GO OBO file (plain or ``.gz``) with obonet.

    Terms keep id, name, namespace and the obsolete flag; relations are the requested typed
    child->parent edges whose both ends are (kept) terms. Malformed input raises
    :class:`GeneSpliceInputError` naming the file and line.
    """
    path = Path(path) if path is not None else knowledge_path(GO_OBO)
    relations = tuple(relations)
    report = ParseReport(source=str(path))
    with open_text(path) as fh, paused_gc():
        try:
            g = obonet.read_obo(fh, ignore_obsolete=False)
        except (ValueError, KeyError, IndexError) as exc:
            line, problem = _locate_obo_error(path)
            if line is None and isinstance(exc, KeyError):
                problem = f"a [Term] stanza lacks the {exc} tag"
            raise GeneSpliceInputError(problem, path=path, line=line) from exc
        except UnicodeDecodeError as exc:
            raise GeneSpliceInputError(f"not UTF-8 text ({exc.reason})", path=path) from exc
    if g.number_of_nodes() == 0:
        raise GeneSpliceInputError("no [Term] stanzas found; expected an OBO ontology",
                                   path=path)
    # nodes without attributes were created implicitly by an edge to an id that has no
    # [Term] stanza in the file: an is_a / part_of to one is a broken ontology
    _check_references(g, path)
    if not include_obsolete:
        g.remove_nodes_from([n for n, a in g.nodes(data=True)
                             if a.get("is_obsolete", "false") == "true"])
    ids = [n for n in g.nodes if g.nodes[n]]
    attrs = [g.nodes[n] for n in ids]
    terms = pd.DataFrame({
        "name": [a.get("name") for a in attrs],
        "namespace": [a.get("namespace") for a in attrs],
        "obsolete": [a.get("is_obsolete", "false") == "true" for a in attrs],
    }, index=pd.Index(ids, name="go_id"))
    for col in ("name", "namespace"):
        missing = terms.index[terms[col].isna()]
        if len(missing):
            raise GeneSpliceInputError(f"term {missing[0]} has no '{col}:' tag",
                                       path=path, line=_find_line(path, f"id: {missing[0]}"))
    alt_ids = {alt: n for n, a in zip(ids, attrs) for alt in a.get("alt_id", [])}
    rows = [(u, k, v) for u, v, k in g.edges(keys=True)]
    edges = pd.DataFrame(rows, columns=["child", "relation", "parent"])
    report.rows_read = len(edges)
    known = edges["parent"].isin(terms.index) & edges["child"].isin(terms.index)
    # dangling targets are nodes networkx created implicitly (e.g. obsolete / external ids)
    report.skip("relation to a term not in the ontology", int((~known).sum()))
    wanted = edges["relation"].isin(relations)
    report.skip("relation type not requested", int((known & ~wanted).sum()))
    edges = edges[known & wanted].reset_index(drop=True)
    report.rows_kept = len(edges)
    report.notes["terms"] = len(terms)
    version = str(g.graph.get("data-version", ""))
    return GeneOntology(terms=terms, edges=edges, alt_ids=alt_ids, version=version,
                        source=str(path), report=report)


# ---------------------------------------------------------------------------- GAF
def _aspects(namespaces: Iterable[str] | None) -> set[str] | None:
    if namespaces is None:
        return None
    inv = {v: k for k, v in NAMESPACES.items()}
    out = set()
    for ns in namespaces:
        if ns in NAMESPACES:
            out.add(ns)
        elif ns in inv:
            out.add(inv[ns])
        else:
            raise GeneSpliceInputError(
                f"unknown GO namespace {ns!r}; expected one of {sorted(inv)} or P/F/C")
    return out


def read_gaf(path: str | os.PathLike | None = None, *,
             resolver: GeneResolver | None | bool = None,
             ontology: GeneOntology | None = None,
             exclude_not: bool = True,
             evidence: Iterable[str] | None = None,
             exclude_evidence: Iterable[str] | None = None,
             namespaces: Iterable[str] | None = None,
             propagate: bool = False) -> tuple[pd.DataFrame, ParseReport]:
    """Read a GAF 2.x file into (annotations, report).

    Columns of the result: ``gene`` (official symbol, or the GAF symbol when
    ``resolver=False``), ``go_id``, ``evidence``, ``aspect`` (P/F/C), ``qualifier``,
    ``db_object_id``; with ``propagate=True`` (needs ``ontology``) the result is the
    unique (gene, go_id) pairs after the true-path rule over is_a/part_of with a ``direct``
    flag (evidence/qualifier of the direct annotation, NaN for inferred pairs).

    ``evidence``: keep only these codes; ``exclude_evidence``: drop these codes.
    ``namespaces``: e.g. ``["biological_process"]`` or ``["P"]``.
    With ``ontology`` given, alt_ids are mapped to primary ids and annotations to terms not in
    the ontology (obsolete) are skipped and counted.
    """
    path = Path(path) if path is not None else knowledge_path(GO_GAF)
    report = ParseReport(source=str(path))
    df = _read_gaf_rows(path)
    report.rows_read = len(df)
    df = _select_annotations(df, report, exclude_not=exclude_not, evidence=evidence,
                             exclude_evidence=exclude_evidence, namespaces=namespaces)
    if ontology is not None:
        df = _to_primary_terms(df, ontology, report)
    gene = df["db_object_symbol"] if resolver is False else _resolve_genes(df, resolver, report)
    df = df.assign(gene=gene)
    df = df[df["gene"].notna()]
    out = df[["gene", "go_id", "evidence", "aspect", "qualifier", "db_object_id"]]
    out = out.reset_index(drop=True)
    if propagate:
        if ontology is None:
            raise GeneSpliceInputError("propagate=True needs the ontology (read_go_obo)")
        out = propagate_annotations(out, ontology)
    report.rows_kept = len(out)
    return out, report.log()


def _read_gaf_rows(path: Path) -> pd.DataFrame:
    """The annotation lines of a GAF (17 columns each, checked per line) as strings.

    Required columns must be non-empty, aspect must be P/F/C and the term a ``GO:`` id; the
    error names the line.
    """
    data = read_bytes(path)
    lines = scan_lines(data)
    comment = (lines.first_byte == ord("!"))
    blank = lines.ends == lines.starts
    body = ~comment & ~blank
    if not body.any():
        raise GeneSpliceInputError("no annotation lines (only '!' header lines); expected GAF",
                                   path=path)
    check_field_counts(path, lines, body, expected=17,
                       what="tab-separated GAF 2.x columns")
    line_no = np.flatnonzero(body) + 1
    skip = np.flatnonzero(~body)
    df = pd.read_csv(io.BytesIO(data), sep="\t", header=None, names=list(GAF_COLUMNS),
                     dtype=str, skiprows=skip.tolist() or None, quoting=3,
                     keep_default_na=False, na_values=[""], skip_blank_lines=False,
                     usecols=["db_object_id", "db_object_symbol", "qualifier", "go_id",
                              "evidence", "aspect"])
    for col in ("db_object_id", "go_id", "evidence", "aspect"):
        bad = df[col].isna().to_numpy()
        if bad.any():
            raise GeneSpliceInputError(f"empty required GAF column {col!r}", path=path,
                                       line=int(line_no[np.argmax(bad)]))
    bad = ~df["aspect"].isin(list(NAMESPACES)).to_numpy()
    if bad.any():
        raise GeneSpliceInputError(
            f"expected aspect P, F or C in column 9, found {df['aspect'].iloc[np.argmax(bad)]!r}",
            path=path, line=int(line_no[np.argmax(bad)]))
    bad = ~df["go_id"].str.startswith("GO:").to_numpy()
    if bad.any():
        raise GeneSpliceInputError(
            f"expected a GO:nnnnnnn id in column 5, found {df['go_id'].iloc[np.argmax(bad)]!r}",
            path=path, line=int(line_no[np.argmax(bad)]))
    return df


def _select_annotations(df: pd.DataFrame, report: ParseReport, *, exclude_not: bool,
                        evidence: Iterable[str] | None, exclude_evidence: Iterable[str] | None,
                        namespaces: Iterable[str] | None) -> pd.DataFrame:
    """Rows passing the NOT-qualifier, evidence and namespace filters (each skip counted)."""
    keep = np.ones(len(df), dtype=bool)
    if exclude_not:
        is_not = df["qualifier"].fillna("").str.contains(r"(?:^|\|)NOT(?:\||$)",
                                                         regex=True).to_numpy()
        report.skip("NOT qualifier", int((keep & is_not).sum()))
        keep &= ~is_not
    if evidence is not None:
        m = df["evidence"].isin(set(evidence)).to_numpy()
        report.skip("evidence code not selected", int((keep & ~m).sum()))
        keep &= m
    if exclude_evidence:
        m = df["evidence"].isin(set(exclude_evidence)).to_numpy()
        report.skip("evidence code excluded", int((keep & m).sum()))
        keep &= ~m
    asp = _aspects(namespaces)
    if asp is not None:
        m = df["aspect"].isin(asp).to_numpy()
        report.skip("namespace not selected", int((keep & ~m).sum()))
        keep &= m
    return df[keep]


def _to_primary_terms(df: pd.DataFrame, ontology: GeneOntology,
                      report: ParseReport) -> pd.DataFrame:
    """alt_ids -> primary ids; rows whose term is not in the ontology are skipped (counted)."""
    go_id = ontology.primary(df["go_id"]) if ontology.alt_ids else df["go_id"]
    report.notes["alt_ids_mapped"] = int((go_id != df["go_id"]).sum())
    known = go_id.isin(ontology.terms.index).to_numpy()
    report.skip("GO term not in ontology (obsolete/unknown)", int((~known).sum()))
    return df.assign(go_id=go_id)[known]


def _resolve_genes(df: pd.DataFrame, resolver: GeneResolver | None,
                   report: ParseReport) -> pd.Series:
    """Official symbol per row (NaN where unmapped): the GAF symbol, else the UniProt id."""
    resolver = resolver or default_resolver()
    gene = resolver.resolve_series(df["db_object_symbol"])
    miss = gene.isna()
    if miss.any():  # fall back to the UniProt accession
        gene = gene.copy()
        gene[miss] = resolver.resolve_series(df.loc[miss, "db_object_id"])
    unmapped = df.loc[gene.isna(), "db_object_symbol"]
    report.skip("gene id not mapped", int(gene.isna().sum()))
    report.add_unmapped(list(pd.unique(unmapped)))
    report.n_unmapped = int(unmapped.nunique())
    return gene


def propagate_annotations(ann: pd.DataFrame, ontology: GeneOntology,
                          relations: Sequence[str] = PROPAGATE_RELATIONS) -> pd.DataFrame:
    """True-path rule: each (gene, go_id) also holds for every ancestor over ``relations``.

    Vectorised over cached per-term ancestor sets. Returns unique (gene, go_id) pairs with
    ``direct`` (True where the pair was annotated directly) and ``aspect`` of the term.
    """
    anc = ontology.ancestors(relations)
    genes, gene_code = np.unique(ann["gene"].to_numpy(dtype=object), return_inverse=True)
    term_code = anc.codes(ann["go_id"])
    if np.isnan(term_code.astype(float)).any():
        raise GeneSpliceInputError("annotations reference terms not in the ontology; "
                                   "read the GAF with ontology=...")
    g, t, direct = expand(anc, gene_code, term_code.astype(np.int64))
    nodes = np.asarray(anc.nodes, dtype=object)
    ns = ontology.terms["namespace"].map({v: k for k, v in NAMESPACES.items()})
    out = pd.DataFrame({"gene": genes[g], "go_id": nodes[t], "direct": direct})
    out["aspect"] = out["go_id"].map(ns)
    return out.sort_values(["gene", "go_id"], kind="stable").reset_index(drop=True)


def evidence_groups(codes: pd.Series) -> pd.Series:
    """Evidence code -> group name (experimental, phylogenetic, computational, author,
    curator, electronic; 'other' for unknown codes)."""
    return codes.map(EVIDENCE_GROUP_OF).fillna("other")
