"""Declarative graph recipes (``graphs/*.toml``) -> a frozen :class:`Recipe`.

Every key is checked: an unknown key, a wrong type or a bad value raises
:class:`GeneSpliceInputError` naming the recipe file and the key (and the line when TOML itself
cannot be parsed). Relative input paths are resolved against ``knowledge_dir`` (a recipe key,
itself relative to the recipe file; default: the bundled ``knowledge/`` or
``$GENESPLICE_KNOWLEDGE``).

Why ``min_genes = 10`` by default: a term or pathway annotated to fewer than 10 genes of the
universe (counted after true-path propagation) gives a feature too sparse to learn from -- it
mostly re-encodes gene identity -- and the next issue's models would overfit it. Ten is the
common enrichment-analysis floor (clusterProfiler ``minGSSize = 10``). On the bundled data it
keeps 8.6k of 22.4k annotated GO terms while losing ~2 % of propagated annotations, and the
genes of dropped terms are not lost: their annotations are re-attached to the nearest kept
ancestor terms (kept sets are closed upwards, since an ancestor has at least its children's
genes).
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from genesplice.annotations.go import DEFAULT_RELATIONS, GO_NAMESPACES
from genesplice.io import constants as bundled
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_dir
from genesplice.io.text import undecodable_line


@dataclass(frozen=True)
class GenesSection:
    #: "expression": symbols of ``universe_file`` (default: the HPA GTEx table), so genes
    #: without any annotation are still nodes; "annotated": every gene with an edge;
    #: "file": one symbol per line / column ``universe_column`` of a TSV.
    universe: str = "expression"
    universe_file: str = bundled.EXPRESSION
    universe_column: str = "gene_symbol"
    id_table: str = bundled.GENE_ID_TABLE
    uniprot_map: str = bundled.UNIPROT_TO_SYMBOL
    #: alias shared by several genes: "skip" (leave unmapped, counted) or "first"
    ambiguous: str = "skip"


@dataclass(frozen=True)
class GoSection:
    enabled: bool = True
    obo: str = bundled.GO_OBO
    gaf: str = bundled.GO_GAF
    namespaces: tuple[str, ...] = GO_NAMESPACES
    relations: tuple[str, ...] = DEFAULT_RELATIONS
    #: keep only these evidence codes (empty: all)
    evidence: tuple[str, ...] = ()
    #: ND = "no biological data available" (annotations to the three roots); IEP / HEP =
    #: inferred from (high-throughput) expression pattern: measured expression, not knowledge
    #: about the gene, and the expression models predict expression
    exclude_evidence: tuple[str, ...] = ("ND", "IEP", "HEP")
    exclude_not: bool = True
    #: gene--term edges for every ancestor (true-path rule) instead of direct annotations only
    propagate: bool = False
    min_genes: int = 10
    #: drop terms with more genes than this (0: no limit)
    max_genes: int = 0


@dataclass(frozen=True)
class ReactomeSection:
    enabled: bool = True
    mapping: str = bundled.REACTOME_MAPPING
    hierarchy: str = bundled.REACTOME_RELATION
    names: str = bundled.REACTOME_NAMES
    species: str = "Homo sapiens"
    propagate: bool = False
    min_genes: int = 10
    max_genes: int = 0


@dataclass(frozen=True)
class RegulatorySection:
    enabled: bool = True
    trrust: str = bundled.TRRUST
    dorothea: str = bundled.DOROTHEA
    #: keep DoRothEA interactions of confidence A..this letter
    dorothea_max_confidence: str = "C"
    #: confidence letter given to TRRUST's literature-curated edges
    trrust_confidence: str = "A"
    use_trrust: bool = True
    use_dorothea: bool = True


@dataclass(frozen=True)
class GraphSection:
    #: add ``rev_<relation>`` edges so messages flow both ways
    reverse_edges: bool = True


@dataclass(frozen=True)
class Recipe:
    name: str = "graph"
    description: str = ""
    #: relative to the recipe file; "" = bundled knowledge/ ($GENESPLICE_KNOWLEDGE)
    knowledge_dir: str = ""
    genes: GenesSection = field(default_factory=GenesSection)
    go: GoSection = field(default_factory=GoSection)
    reactome: ReactomeSection = field(default_factory=ReactomeSection)
    regulatory: RegulatorySection = field(default_factory=RegulatorySection)
    graph: GraphSection = field(default_factory=GraphSection)
    #: where the recipe was read from (not a TOML key)
    source: str = field(default="", compare=False)

    # ------------------------------------------------------------------ paths
    def root(self) -> Path:
        if not self.knowledge_dir:
            return knowledge_dir()
        p = Path(self.knowledge_dir)
        if not p.is_absolute() and self.source:
            p = Path(self.source).resolve().parent / p
        return p

    def path(self, value: str) -> Path:
        """An input path of this recipe, resolved against :meth:`root`.

        A relative path may not leave :meth:`root` (``../`` out of it is an error naming the
        recipe); an absolute path (or ``~/...``) is taken as given.
        """
        p = Path(os.path.expanduser(value))
        if p.is_absolute():
            return p
        if _escapes(p):
            raise GeneSpliceInputError(
                f"input path {value!r} leaves the knowledge folder {self.root()}; give an "
                "absolute path to read a file outside it", path=self.source or None)
        return self.root() / p

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        return _lists(d)


def _escapes(relative: Path) -> bool:
    """Whether a relative path climbs out of its base folder (``..`` past the base)."""
    return os.path.normpath(relative).split(os.sep)[0] == os.pardir


#: keys whose value is an input path (relative to ``knowledge_dir``)
PATH_KEYS = {"genes": ("universe_file", "id_table", "uniprot_map"), "go": ("obo", "gaf"),
             "reactome": ("mapping", "hierarchy", "names"),
             "regulatory": ("trrust", "dorothea")}


def _check_paths(recipe: "Recipe", err: "_Err") -> None:
    """Relative paths stay inside their folder: ``knowledge_dir`` inside the recipe's folder,
    input paths inside ``knowledge_dir``; absolute paths are taken as given."""
    kd = Path(os.path.expanduser(recipe.knowledge_dir))
    if recipe.knowledge_dir and not kd.is_absolute() and _escapes(kd):
        raise err(f"key 'knowledge_dir': {recipe.knowledge_dir!r} leaves the recipe's folder; "
                  "give an absolute path to use a folder outside it", "knowledge_dir")
    for section, keys in PATH_KEYS.items():
        for key in keys:
            value = getattr(getattr(recipe, section), key)
            p = Path(os.path.expanduser(value))
            if not p.is_absolute() and _escapes(p):
                raise err(f"key '{section}.{key}': {value!r} leaves the knowledge folder; give "
                          "an absolute path to read a file outside it", f"{section}.{key}")


def _lists(obj):
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj


_SECTIONS = {"genes": GenesSection, "go": GoSection, "reactome": ReactomeSection,
             "regulatory": RegulatorySection, "graph": GraphSection}
_CHOICES = {
    ("genes", "universe"): ("expression", "annotated", "file"),
    ("genes", "ambiguous"): ("skip", "first"),
    ("go", "namespaces"): GO_NAMESPACES,
    ("go", "relations"): (*DEFAULT_RELATIONS, "has_part", "occurs_in"),
    ("regulatory", "dorothea_max_confidence"): ("A", "B", "C", "D", "E"),
    ("regulatory", "trrust_confidence"): ("A", "B", "C", "D", "E"),
}


def _coerce(value: Any, hint: Any, key: str, err: "_Err") -> Any:
    def bad(expected: str):
        return err(f"key {key!r}: expected {expected}, found {value!r}", key)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad("a non-negative integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if hint == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    raise AssertionError(hint)  # pragma: no cover


def _key_line(text: str | None, dotted: str) -> int | None:
    """Line of ``key`` (``section.key`` or a top-level key / [section]) in TOML text."""
    if not text:
        return None
    section, _, key = dotted.rpartition(".")
    current = ""
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        m = re.match(r"^\[\s*([^\]]+?)\s*\]", s)
        if m:
            current = m.group(1)
            if not section and current == key:
                return n
            continue
        if current == section and re.match(rf"^[\"']?{re.escape(key)}[\"']?\s*=", s):
            return n
    return None


class _Err:
    def __init__(self, source: str, text: str | None):
        self.source, self.text = source, text

    def __call__(self, message: str, key: str) -> GeneSpliceInputError:
        return GeneSpliceInputError(message, path=self.source, line=_key_line(self.text, key))


def recipe_from_dict(raw: dict[str, Any], source: str = "<recipe>",
                     text: str | None = None) -> Recipe:
    """Validate a parsed TOML table into a :class:`Recipe` (unknown keys are errors)."""
    err = _Err(source, text)
    top_hints = get_type_hints(Recipe)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise err(f"key {key!r}: expected a [{key}] table", key)
            cls = _SECTIONS[key]
            hints = get_type_hints(cls)
            sec: dict[str, Any] = {}
            for k, v in value.items():
                if k not in hints:
                    raise err(f"unknown key '{key}.{k}'; expected one of "
                              f"{', '.join(sorted(hints))}", f"{key}.{k}")
                sec[k] = _coerce(v, hints[k], f"{key}.{k}", err)
                allowed = _CHOICES.get((key, k))
                if allowed:
                    vals = sec[k] if isinstance(sec[k], tuple) else (sec[k],)
                    for x in vals:
                        if x not in allowed:
                            raise err(f"key '{key}.{k}': {x!r} is not one of "
                                      f"{', '.join(allowed)}", f"{key}.{k}")
            kwargs[key] = cls(**sec)
        elif key in ("name", "description", "knowledge_dir"):
            kwargs[key] = _coerce(value, top_hints[key], key, err)
        else:
            known = sorted([*_SECTIONS, "name", "description", "knowledge_dir"])
            raise err(f"unknown key {key!r}; expected one of {', '.join(known)}", key)
    recipe = Recipe(source=source, **kwargs)
    _check_paths(recipe, err)
    return recipe


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and validate a TOML recipe."""
    path = Path(path)
    if not path.exists():
        raise GeneSpliceInputError("recipe not found", path=path)
    if not path.is_file():
        raise GeneSpliceInputError("expected a recipe file, found a directory", path=path)
    data = path.read_bytes()
    bad = undecodable_line(data)
    if bad is not None:
        raise GeneSpliceInputError(bad[1], path=path, line=bad[0])
    text = data.decode("utf-8")
    if not text.strip():
        raise GeneSpliceInputError("recipe is empty; expected TOML with [genes], [go], ...",
                                   path=path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise GeneSpliceInputError(f"invalid TOML: {msg}", path=path,
                                   line=int(m.group(1)) if m else None) from exc
    return recipe_from_dict(raw, source=str(path), text=text)


def default_recipe_path() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "graphs" / "human_default.toml"
