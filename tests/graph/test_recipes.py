"""TOML recipes: the shipped default, unknown keys, types, TOML syntax errors."""
import dataclasses

import pytest

from genesplice.io.errors import GeneSpliceInputError
from genesplice.graph.recipes import Recipe, default_recipe_path, load_recipe
from genesplice.io.knowledge import knowledge_dir


def test_default_recipe():
    r = load_recipe(default_recipe_path())
    assert r.name == "human_default"
    assert r.go.min_genes == 10 and r.reactome.min_genes == 10
    assert "has_part" not in r.go.relations
    # expression-pattern evidence (IEP, HEP) is measured expression, not knowledge
    assert r.go.exclude_evidence == Recipe().go.exclude_evidence == ("ND", "IEP", "HEP")
    assert r.genes.universe == "expression"
    assert r.path(r.go.obo) == knowledge_dir() / "annotations/go.obo.gz"
    assert r.path(r.go.obo).exists()
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'name'"):
        r.name = "x"  # frozen


def test_unknown_key_names_key_and_line(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('name = "x"\n\n[go]\nmin_genes = 5\nmin_gene = 3\n')
    with pytest.raises(GeneSpliceInputError, match=r"r.toml:5: unknown key 'go.min_gene'"):
        load_recipe(p)
    p.write_text('name = "x"\ncolour = "red"\n')
    with pytest.raises(GeneSpliceInputError, match=r"r.toml:2: unknown key 'colour'"):
        load_recipe(p)
    p.write_text('[gos]\nx = 1\n')
    with pytest.raises(GeneSpliceInputError, match=r"r.toml:1: unknown key 'gos'"):
        load_recipe(p)


def test_bad_types_and_values(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('[go]\nmin_genes = "ten"\n')
    with pytest.raises(GeneSpliceInputError, match=r"r.toml:2: key 'go.min_genes': expected a "
                                                   r"non-negative integer"):
        load_recipe(p)
    p.write_text('[regulatory]\ndorothea_max_confidence = "F"\n')
    with pytest.raises(GeneSpliceInputError, match="is not one of A, B, C, D, E"):
        load_recipe(p)


def test_toml_syntax_error_and_empty(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('name = "x"\n[go\n')
    with pytest.raises(GeneSpliceInputError, match=r"r.toml:2: invalid TOML"):
        load_recipe(p)
    p.write_text("")
    with pytest.raises(GeneSpliceInputError, match="recipe is empty"):
        load_recipe(p)


def test_knowledge_dir_relative_to_recipe(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('knowledge_dir = "data"\n')
    r = load_recipe(p)
    assert r.path("annotations/go.obo.gz") == tmp_path / "data" / "annotations/go.obo.gz"
    assert isinstance(r, Recipe) and r.to_dict()["knowledge_dir"] == "data"


def test_relative_paths_cannot_leave_their_folder(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('[go]\nenabled = true\nobo = "../../etc/passwd"\n')
    with pytest.raises(GeneSpliceInputError, match=r"r.toml:3: key 'go.obo': .*leaves the "
                                                   r"knowledge folder"):
        load_recipe(p)
    p.write_text('knowledge_dir = "../elsewhere"\n')
    with pytest.raises(GeneSpliceInputError, match=r"r.toml:1: key 'knowledge_dir'.*leaves"):
        load_recipe(p)
    p.write_text('knowledge_dir = "data"\n[go]\nobo = "sub/../go.obo"\n')   # stays inside
    assert load_recipe(p).path("sub/../go.obo") == tmp_path / "data" / "sub/../go.obo"
    p.write_text(f'[go]\nobo = "{tmp_path / "abs.obo"}"\n')                 # absolute: as given
    r = load_recipe(p)
    assert r.path(r.go.obo) == tmp_path / "abs.obo"
    with pytest.raises(GeneSpliceInputError, match="leaves the knowledge folder"):
        r.path("../x.obo")
