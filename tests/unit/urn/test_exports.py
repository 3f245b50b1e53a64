"""Every module's `__all__` names exist (like httpx's test_exported_members)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ["urn", "checker", "aggregator", "resolver", "bench"]
# Kernel modules must declare their public surface.
MUST_DECLARE = ["urn"]


def modules() -> list[str]:
    names: list[str] = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        names.extend(
            info.name
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}.")
            if info.name.rsplit(".", 1)[-1] != "__main__"
        )
    return sorted(names)


@pytest.mark.parametrize("name", modules())
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert name.split(".")[0] not in MUST_DECLARE, f"{name} has no __all__"
        return
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names missing attributes: {missing}"


def test_package_root_exports() -> None:
    import urn

    assert urn.__version__
    assert issubclass(urn.WireError, urn.UrnError)
    assert issubclass(urn.ConfigError, urn.UrnError)
