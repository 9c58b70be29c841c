"""OmegaConf configs in checkpoints are refused with a finding that says so (refused_globals.py).

Hydra, NeMo and Lightning projects hand `save_hyperparameters` a `DictConfig`; Lightning then
pickles it as it is under `hyper_parameters` (and its class under `hparams_type`). This test
trains a tiny `LightningModule` for one step on the CPU with such hyper-parameters, checks what
the real checkpoint imports (a change in what OmegaConf or Lightning writes fails it: read it
again), and that verifier denies it with the reason on every OmegaConf name.
"""

from __future__ import annotations

import pickletools
import warnings
import zipfile
from pathlib import Path

import pytest

from tests.scanners.streams import BytesScanStream
from verifier.model import Severity
from verifier.pipeline import scan_stream
from verifier.scanners.refused_globals import REFUSED_PACKAGES
from verifier.scanners.sniff import HEAD_SIZE

omegaconf = pytest.importorskip("omegaconf")
pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")

#: What a Lightning 2.6 checkpoint whose hyper-parameters are a DictConfig (with a nested
#: mapping, a list, an interpolation and a None) imports, read from a real one.
OMEGACONF_IMPORTS = {
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.nodes.AnyNode",
    "typing.Any",
}


class _Regressor(pl.LightningModule):  # type: ignore[misc]
    def __init__(self, cfg: object) -> None:
        super().__init__()
        self.save_hyperparameters(cfg)
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
        return self.layer(batch[0]).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> torch.utils.data.DataLoader[tuple[torch.Tensor, ...]]:
        data = torch.utils.data.TensorDataset(torch.randn(4, 2))
        return torch.utils.data.DataLoader(data, batch_size=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    cfg = omegaconf.OmegaConf.create(
        {"model": {"lr": 0.1, "layers": [1, 2], "name": "x", "tag": "${model.name}_v"}, "opt": None}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's deprecation and CPU-only notices
        return _train(cfg, tmp_path_factory.mktemp("omegaconf") / "hydra.ckpt")


def _train(cfg: object, path: Path) -> bytes:
    trainer = pl.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_Regressor(cfg))
    trainer.save_checkpoint(path)
    return path.read_bytes()


def _imports(ckpt: bytes, tmp_path: Path) -> set[str]:
    path = tmp_path / "hydra.ckpt"
    path.write_bytes(ckpt)
    with zipfile.ZipFile(path) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        pickled = archive.read(name)
    return {
        str(arg).replace(" ", ".")
        for op, arg, _ in pickletools.genops(pickled)
        if op.name == "GLOBAL"
    }


def test_a_checkpoint_with_omegaconf_hyper_parameters_imports_what_is_documented(
    checkpoint: bytes, tmp_path: Path
) -> None:
    imports = _imports(checkpoint, tmp_path)
    assert {n for n in imports if n.startswith(("omegaconf.", "typing."))} == OMEGACONF_IMPORTS


def test_omegaconf_configs_are_denied_with_the_reason(checkpoint: bytes) -> None:
    _, findings, _ = scan_stream(BytesScanStream(checkpoint), "hydra.ckpt", checkpoint[:HEAD_SIZE])
    serious = {f.evidence: f for f in findings if f.severity.at_least(Severity.HIGH)}
    assert set(serious) == OMEGACONF_IMPORTS
    for name, finding in serious.items():
        assert finding.code == "PICKLE-UNKNOWN-GLOBAL"
        refused = name.startswith("omegaconf.")
        assert (REFUSED_PACKAGES["omegaconf"] in finding.message) is refused, name
