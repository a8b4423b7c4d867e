"""Device selection (``cpu|cuda|mps|auto``), ``.to(device)`` of the model inputs, training and
prediction with ``device="cpu"`` equal to the default, and no device-less tensors in the
model code path. CPU only; the selection logic is tested with monkeypatched availability."""
import ast
import pathlib

import pytest
import scipy.sparse as sp
import torch

import genesplice.models as models_pkg
from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.device import module_device, resolve_device
from genesplice.models.inference import TwoStateModel
from genesplice.training.config import TrainConfig
from genesplice.training.data import TrainingData
from genesplice.training.loop import predict_rows, train_model
from tests.models.test_attribution import N_GENES, make_model, synthetic_inputs


def _available(monkeypatch, *, cuda, mps):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"),
                                                 (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _available(monkeypatch, cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device(None) == torch.device(expected)
    assert resolve_device(" AUTO ") == torch.device(expected)


def test_explicit_devices(monkeypatch):
    _available(monkeypatch, cuda=False, mps=False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    for name in ("cuda", "cuda:0", "mps"):
        with pytest.raises(GeneSpliceInputError, match=f"device '{name}'.*not available") as err:
            resolve_device(name)
        assert "\n" not in str(err.value)
    with pytest.raises(GeneSpliceInputError, match="'tpu' is not one of"):
        resolve_device("tpu")
    _available(monkeypatch, cuda=True, mps=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(GeneSpliceInputError, match="only 1 CUDA device"):
        resolve_device("cuda:3")


def tiny_data() -> TrainingData:
    graph, seq = synthetic_inputs()
    g = torch.Generator().manual_seed(4)
    y = torch.randn(N_GENES, 5, generator=g)
    observed = torch.rand(N_GENES, 5, generator=g) > 0.2
    y[~observed] = float("nan")
    rows = {"train": torch.tensor([0, 1, 2, 3, 4]), "val": torch.tensor([5, 6]),
            "test": torch.tensor([7])}
    dense = graph.membership.to_dense().numpy()
    return TrainingData(gene_ids=[f"G{i}" for i in range(N_GENES)],
                        tissues=[f"t{j}" for j in range(5)], y=y, observed=observed, rows=rows,
                        graph_inputs=graph, edge_dims={et: 2 for et in graph.edge_attr_dict},
                        membership=graph.membership, membership_csr=sp.csr_matrix(dense),
                        feature_names=[f"f{j}" for j in range(dense.shape[1])],
                        function_labels=torch.zeros(N_GENES, 0), function_names=[],
                        sequences=seq)


def test_inputs_already_on_the_device_are_returned_as_they_are():
    data = tiny_data()
    cpu = torch.device("cpu")
    assert data.graph_inputs.to(cpu) is data.graph_inputs
    assert data.sequences.to("cpu") is data.sequences
    assert data.to(cpu) is data
    assert module_device(make_model(0)) == cpu


def test_training_and_prediction_on_cpu_equal_the_default():
    cfg = TrainConfig(epochs=2, batch_size=2, warmup_steps=1, patience=0, aux_weight=0.0,
                      contrastive_weight=0.05, edge_dropout=0.2)
    results, preds = [], []
    for device in (None, resolve_device("cpu")):
        model = make_model(0)
        results.append((train_model(model, tiny_data(), cfg, progress=False, device=device),
                        model))
        preds.append(predict_rows(model, tiny_data(), torch.arange(N_GENES), device=device,
                                  level_state=results[-1][0].level_state,
                                  profile_state=results[-1][0].profile_state))
    (a, ma), (b, mb) = results
    assert a.history.equals(b.history) and len(a.history) == 2
    assert all(torch.equal(v, mb.state_dict()[k]) for k, v in ma.state_dict().items())
    assert torch.equal(preds[0], preds[1]) and preds[0].device.type == "cpu"
    graph, seq = synthetic_inputs()
    p1, _ = TwoStateModel(ma, ma, seq).predict(graph, seq, torch.arange(N_GENES))
    p2, _ = TwoStateModel(ma, ma, seq, device="cpu").predict(graph, seq, torch.arange(N_GENES))
    assert torch.equal(p1, p2)


FACTORIES = {"zeros", "ones", "full", "arange", "tensor", "rand", "randn", "randint", "empty",
             "randperm", "eye", "linspace"}
MODEL_CODE = ["model.py", "inference.py", "graph_encoder.py", "fusion.py", "attribution.py",
              "label_attention.py"]


def test_model_code_creates_no_tensor_without_a_device():
    """``torch.zeros(...)`` & co. in the model code path name their device (taken from their
    inputs); parameters created in ``__init__`` (``nn.Parameter(torch.zeros(d))``) move with
    ``.to`` and are allowed."""
    root = pathlib.Path(models_pkg.__file__).parent
    offenders = []
    for name in MODEL_CODE:
        tree = ast.parse((root / name).read_text())
        parent = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in FACTORIES and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "torch"):
                continue
            if any(k.arg == "device" for k in node.keywords):
                continue
            up = parent.get(node)
            if isinstance(up, ast.Call) and getattr(up.func, "attr", None) == "Parameter":
                continue
            offenders.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "\n".join(offenders)


# the pretrain / embed / train / predict / explain / variant code paths (issue 10, item 5)
DEVICE_PATHS = ["training/pretrain.py", "training/embed.py", "training/loop.py",
                "training/experiment.py", "models/inference.py", "models/model.py",
                "models/attribution.py", "api/predictions.py", "api/variant_effects.py",
                "api/explanation.py", "sequence/variants.py"]
#: ``.numpy()`` without ``.cpu()`` in the same expression, on a tensor that is on the CPU by
#: construction: (file, function, receiver) → why
CPU_BY_CONSTRUCTION = {
    ("training/experiment.py", "train_variant", "predict_rows("): "predict_rows returns .cpu()",
    ("training/experiment.py", "_checkpoint_predictions", "predict_rows("):
        "predict_rows returns .cpu()",
    ("training/experiment.py", "evaluate_models", "rows"): "row indices of the CPU data",
    ("training/experiment.py", "_frame", "rows"): "row indices of the CPU data",
    ("api/predictions.py", "observed", "self.data.y["): "targets of the CPU data",
    ("api/variant_effects.py", "__call__", "(preds[1] - preds[0])"): "preds appended .cpu()",
    ("api/variant_effects.py", "pairs_of", "has"): "torch.tensor of Python bools",
    ("api/explanation.py", "attributions", "ism_table("): "built from delta.cpu()",
    ("api/explanation.py", "attributions", "positions"): "CPU index of the gene's tokens",
    ("api/explanation.py", "attributions", "tokens"): "the gene's CPU tokens",
    ("api/explanation.py", "attributions", "plain"): "from grad .cpu()",
    ("api/explanation.py", "attributions", "centred"): "from grad .cpu()",
    ("training/embed.py", "_compute", "emb"): "embed_batches yields .cpu() embeddings",
    ("training/embed.py", "_compute_sharded", "emb"): "embed_batches yields .cpu() embeddings",
}


def _chain(node: ast.AST) -> list[str]:
    """Attribute names along a call chain: ``x.detach().cpu().numpy`` → numpy, cpu, detach."""
    names = []
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
        node = node.func if isinstance(node, ast.Call) else node.value
    return names


def test_device_code_paths_make_no_cpu_only_calls():
    """Every path that ``--device`` reaches moves results back with ``.cpu()`` before
    ``.numpy()`` (which fails on a CUDA/MPS tensor), never calls ``.cuda()`` (ignores
    ``--device``) and never hard-codes the CPU (``torch.device("cpu")``, ``.to("cpu")``,
    ``device="cpu"``, ``map_location="cpu"``); a tensor that is on the CPU by construction is
    listed with the reason above. Static, so it checks the CUDA/MPS paths on a CPU-only
    machine; the runtime side (same results on ``cpu`` as by default) is tested above."""
    root = pathlib.Path(models_pkg.__file__).parents[1]
    offenders, used = [], set()
    for name in DEVICE_PATHS:
        tree = ast.parse((root / name).read_text())
        functions = [n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

        def owner(node):
            inner = [f for f in functions if f.lineno <= node.lineno <= f.end_lineno]
            return max(inner, key=lambda f: f.lineno).name if inner else "<module>"

        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{name}:{node.lineno} ({owner(node)}): {ast.unparse(node)[:80]}"
            attr = node.func.attr if isinstance(node.func, ast.Attribute) else None
            cpu_literal = any(isinstance(a, ast.Constant) and a.value == "cpu"
                              for a in node.args if attr in ("to", "device")) or any(
                k.arg in ("device", "map_location") and isinstance(k.value, ast.Constant)
                and k.value.value == "cpu" for k in node.keywords)
            if attr == "cuda" or cpu_literal:
                if (name, owner(node)) != ("models/inference.py", "_graph_device"):
                    offenders.append(where)        # _graph_device: a graph without edges
            if attr == "numpy" and "cpu" not in _chain(node.func.value):
                receiver = ast.unparse(node.func.value)
                key = next((k for k in CPU_BY_CONSTRUCTION if k[:2] == (name, owner(node))
                            and receiver.startswith(k[2])), None)
                if key is None:
                    offenders.append(where + "  <- add .cpu() before .numpy()")
                used.add(key)
    assert not offenders, "CPU-only calls on a device path:\n" + "\n".join(offenders)
    stale = set(CPU_BY_CONSTRUCTION) - used
    assert not stale, f"allow-list entries that no longer match any code: {sorted(stale)}"
