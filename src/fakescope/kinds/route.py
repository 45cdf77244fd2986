"""A router (`fakescope-route/1`): no network of its own, other models for ranges of image size
(e.g. thumbnails to the CIFAKE model, photos to the native-resolution one)."""

from __future__ import annotations

from typing import Any

from fakescope.errors import FakescopeError
from fakescope.kinds.base import Kind


class Route(Kind):
    """`routes`: (max side or None, member) pairs; the last takes every size."""

    kind = "route"
    needs_rgb = False

    def __init__(
        self,
        config: dict[str, Any],
        name: str,
        routes: list[tuple[int | None, Kind]] | None = None,
    ):
        super().__init__(config, name)
        self.routes = routes or []
        if self.routes:
            first = self.routes[0][1]
            self.device, self.batch_size = first.device, first.batch_size

    @classmethod
    def load(cls, path, config: dict[str, Any], name: str, load_member) -> Route:
        routes = [(r.get("max_side"), load_member(r["model"])) for r in config["route"]]
        if not routes or routes[-1][0] is not None:
            raise FakescopeError(f"{path}: the last route must take every size")
        return cls(config, name, routes)

    def member(self, size: tuple[int, int]) -> Kind:
        for max_side, kind in self.routes:
            if max_side is None or max(size) <= max_side:
                return kind.member(size)
        raise AssertionError("the last route takes every size")

    def members(self) -> list[Kind]:
        out: dict[str, Kind] = {}
        for _, kind in self.routes:
            out.update({m.name: m for m in kind.members()})
        return list(out.values())

    def _refuse(self, what: str) -> FakescopeError:
        members = ", ".join(str(r.get("model")) for r in self.config["route"])
        return FakescopeError(
            f"{self.name} is a routing model with no network of its own: "
            f"{what} each of its models instead ({members})"
        )

    def network(self) -> Kind:
        raise self._refuse("export (fakescope export --format onnx --model NAME)")

    def own_files(self, folder) -> list[str]:
        raise self._refuse("calibrate")

    own_threshold = False

    def limits(self, fewest_fakes: int | None = None) -> str:
        return "none of its own: each row names the model that scored it; read that one's."

    def description(self) -> str:
        parts = [
            (f"max side <= {r['max_side']} px -> " if r.get("max_side") else "else -> ")
            + r["model"]
            for r in self.config["route"]
        ]
        return "routes by image size: " + "; ".join(parts)

    def card(self, member_configs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """No threshold of its own (null): each `route` entry carries the `threshold` and
        `uncertain` band of the model it names."""
        loaded = {m.name: m.config for _, k in self.routes for m in k.members()}
        configs = {**loaded, **(member_configs or {})}
        route = []
        for r in self.config["route"]:
            cfg = configs.get(r["model"]) or _member_config(r["model"]) or {}
            route.append(
                {**r, "threshold": cfg.get("threshold", 0.5), "uncertain": cfg.get("uncertain")}
            )
        card = {**super().card(), "threshold": None, "uncertain": None, "route": route}
        card["input_rule"] = self.description()
        return card


def _member_config(model: str) -> dict[str, Any] | None:
    """A routed model's config (shipped name or folder), or None when it cannot be read."""
    from fakescope.model_dir import read_config, resolve_model_dir

    try:
        return read_config(resolve_model_dir(model)[0])
    except FakescopeError:
        return None
