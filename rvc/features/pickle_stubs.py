"""Inert stand-ins for the config objects fairseq checkpoints pickle, and their plain form.

A fairseq checkpoint pickles fairseq, omegaconf and argparse objects beside its weights. The
restricted unpickler (:mod:`rvc.features.safe_pickle`) builds a :class:`Stub` for each instead of
importing its class; :func:`to_plain` reads their pickled state back as dicts, lists and values.
"""

from __future__ import annotations

from typing import Any, ClassVar

# Object graphs of configs are shallow and small; these bound what a hostile file may make to_plain build:
# nesting, and values in all (a shared ``[a, a]`` nested 40 deep is 2**40 values once expanded).
_MAX_DEPTH = 64
_MAX_NODES = 200_000  # a fairseq config holds a few thousand


class Stub:
    """An inert stand-in for a pickled object of a class we do not import.

    It accepts whatever pickle gives it (constructor arguments, ``__setstate__``
    state, dict items, list items) and keeps it as data. It has no behaviour.
    """

    stub_module: ClassVar[str] = ""
    stub_name: ClassVar[str] = ""
    stub_args: tuple[Any, ...]
    stub_kwargs: dict[str, Any]
    stub_state: Any
    stub_items: dict[Any, Any]
    stub_list: list[Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Stub:
        obj = object.__new__(cls)
        obj.__dict__.update(stub_args=args, stub_kwargs=kwargs, stub_state=None, stub_items={}, stub_list=[])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["stub_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__["stub_items"][key] = value

    def append(self, value: Any) -> None:
        self.__dict__["stub_list"].append(value)

    def extend(self, values: Any) -> None:
        self.__dict__["stub_list"].extend(values)

    def __repr__(self) -> str:
        return f"<stub {self.stub_module}.{self.stub_name}>"


def is_stubbed(module: str, name: str) -> bool:
    root = module.split(".", 1)[0]
    return root in ("fairseq", "omegaconf", "typing") or (module, name) == ("argparse", "Namespace")


class ExpansionError(ValueError):
    """A loaded object whose plain form would nest too deep or hold too many values (a hostile file)."""


def to_plain(obj: Any, max_nodes: int = _MAX_NODES, max_depth: int = _MAX_DEPTH) -> Any:
    """Return ``obj`` with every :class:`Stub` replaced by plain data.

    omegaconf containers become their content (dict or list), omegaconf value
    nodes their value, an ``argparse.Namespace`` (or any other stub with a dict
    state) a dict of its attributes, an enum-like stub its constructor argument.
    Tensors and other leaves are returned as they are.
    Raises ExpansionError beyond ``max_depth`` levels or ``max_nodes`` values (a value
    referenced twice counts twice: it is copied twice).
    """
    return _Expansion(max_nodes, max_depth).plain(obj, 0)


class _Expansion:
    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.max_nodes, self.max_depth = max_nodes, max_depth
        self.nodes = 0

    def plain(self, obj: Any, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise ExpansionError(f"it expands to more than {self.max_nodes:,} values")
        if depth > self.max_depth:
            raise ExpansionError(f"it nests deeper than {self.max_depth} levels")
        deeper = depth + 1
        if isinstance(obj, Stub):
            return self.stub(obj, deeper)
        if isinstance(obj, dict):
            return {key: self.plain(value, deeper) for key, value in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.plain(value, deeper) for value in obj]
        return obj

    def stub(self, stub: Stub, depth: int) -> Any:
        state = stub.stub_state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | type(None)):
            state = state[0]  # (dict state, slot state)
        if stub.stub_module.startswith("omegaconf") and isinstance(state, dict):
            # containers keep children in _content; value nodes keep the value in _val (``val`` in old versions).
            for key in ("_content", "_val", "val"):
                if key in state:
                    return self.plain(state[key], depth)
        if isinstance(state, dict):
            # "_parent" links a child back to its container: skip it, it would loop.
            plain = {key: self.plain(value, depth) for key, value in state.items() if key != "_parent"}
            plain.update({key: self.plain(value, depth) for key, value in stub.stub_items.items()})
            return plain
        if stub.stub_items:
            return {key: self.plain(value, depth) for key, value in stub.stub_items.items()}
        if stub.stub_list:
            return [self.plain(value, depth) for value in stub.stub_list]
        if len(stub.stub_args) == 1:
            return self.plain(stub.stub_args[0], depth)  # enum members pickle as Class(value)
        if stub.stub_args:
            return [self.plain(value, depth) for value in stub.stub_args]
        return None
