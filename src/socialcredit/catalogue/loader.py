"""Loading the catalogue: four YAML files, validated together, cached, with index lookups."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from socialcredit.catalogue.models import (
    MAX_ACTS,
    MAX_CHANNELS,
    MAX_SERVICES,
    Act,
    ActsFile,
    Channel,
    ChannelsFile,
    Region,
    RegionsFile,
    Service,
    ServicesFile,
)
from socialcredit.catalogue.yamlsource import Node, did_you_mean, read_file, validate
from socialcredit.errors import UserError

#: The folder holding the shipped catalogue files.
CATALOGUE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Catalogue:
    """Acts, channels, services and regions in a fixed order, with index lookups.

    The order is the order of the files; the engine's behaviour tables and the policy tables
    use it as their ``A``, ``H``, ``S`` and region axes. ``categories`` are the act categories
    in order of first appearance (the policy tables' ``T`` axis).
    """

    acts: list[Act]
    channels: list[Channel]
    services: list[Service]
    regions: list[Region]
    categories: list[str]
    act_index: dict[str, int] = field(repr=False)
    channel_index: dict[str, int] = field(repr=False)
    service_index: dict[str, int] = field(repr=False)
    region_index: dict[str, int] = field(repr=False)
    category_index: dict[str, int] = field(repr=False)

    def act(self, act_id: str) -> Act:
        """The act with this id (KeyError when unknown)."""
        return self.acts[self.act_index[act_id]]

    def channel(self, channel_id: str) -> Channel:
        """The channel with this id (KeyError when unknown)."""
        return self.channels[self.channel_index[channel_id]]

    def service(self, service_id: str) -> Service:
        """The service with this id (KeyError when unknown)."""
        return self.services[self.service_index[service_id]]

    def region(self, region_id: str) -> Region:
        """The region with this id (KeyError when unknown)."""
        return self.regions[self.region_index[region_id]]


def _index(items: list[Node], what: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, item in enumerate(items):
        ident = getattr(item, "id")  # noqa: B009 - every catalogue entry has an id
        if ident in out:
            first = items[out[ident]]
            raise item.error(f"the {what} '{ident}' is defined twice (first at line {first.line})")
        out[ident] = i
    return out


def _check(cat_acts: list[Act], channels: list[Channel], services: list[Service],
           regions: list[Region]) -> Catalogue:
    if len(cat_acts) > MAX_ACTS:
        raise cat_acts[MAX_ACTS].error(f"the catalogue has more than {MAX_ACTS} acts")
    if len(channels) > MAX_CHANNELS:
        raise channels[MAX_CHANNELS].error(f"the catalogue has more than {MAX_CHANNELS} channels")
    if len(services) > MAX_SERVICES:
        raise services[MAX_SERVICES].error(f"the catalogue has more than {MAX_SERVICES} services")
    act_index = _index(list(cat_acts), "act")
    channel_index = _index(list(channels), "channel")
    service_index = _index(list(services), "service")
    region_index = _index(list(regions), "region")
    for act in cat_acts:
        for ch in act.channels:
            if ch not in channel_index:
                raise act.error(f"act '{act.id}' names an unknown channel '{ch}'{did_you_mean(ch, channel_index)}", "channels")
        if len(set(act.channels)) != len(act.channels):
            raise act.error(f"act '{act.id}' lists a channel twice", "channels")
    for channel in channels:
        for a in channel.false_acts:
            if a not in act_index:
                raise channel.error(f"channel '{channel.id}' names an unknown act '{a}'{did_you_mean(a, act_index)}", "false_acts")
    for region in regions:
        if region.parent is not None and region.parent not in region_index:
            raise region.error(f"region '{region.id}' names an unknown parent '{region.parent}'", "parent")
    categories: list[str] = []
    for act in cat_acts:
        if act.category not in categories:
            categories.append(act.category)
    return Catalogue(
        acts=list(cat_acts),
        channels=list(channels),
        services=list(services),
        regions=list(regions),
        categories=categories,
        act_index=act_index,
        channel_index=channel_index,
        service_index=service_index,
        region_index=region_index,
        category_index={c: i for i, c in enumerate(categories)},
    )


@lru_cache(maxsize=8)
def _load(folder: str) -> Catalogue:
    base = Path(folder)

    def load(name: str, model: type[Node]) -> Node:
        path = base / name
        data, lines = read_file(path)
        return validate(model, data, lines, str(path))

    acts = load("acts.yaml", ActsFile)
    channels = load("channels.yaml", ChannelsFile)
    services = load("services.yaml", ServicesFile)
    regions = load("regions.yaml", RegionsFile)
    assert isinstance(acts, ActsFile) and isinstance(channels, ChannelsFile)
    assert isinstance(services, ServicesFile) and isinstance(regions, RegionsFile)
    return _check(acts.acts, channels.channels, services.services, regions.regions)


def load_catalogue(folder: str | Path | None = None) -> Catalogue:
    """The catalogue (the shipped one by default), validated and cached per folder.

    ``folder`` holds ``acts.yaml``, ``channels.yaml``, ``services.yaml`` and ``regions.yaml``;
    mistakes raise :class:`~socialcredit.errors.UserError` with file and line.
    """
    path = Path(folder) if folder is not None else CATALOGUE_DIR
    if not path.is_dir():
        raise UserError("the catalogue folder does not exist", path=str(path))
    return _load(str(path.resolve()))


__all__ = ["CATALOGUE_DIR", "Catalogue", "load_catalogue"]
