"""The language of a program (the manifest's ``lang``) -> the Runner that judges it."""

from __future__ import annotations

from .cpp import CppRunner
from .go import GoRunner
from .java import JavaRunner
from .js import JsRunner
from .python import PythonRunner
from .rust import RustRunner


RUNNERS = {"python": PythonRunner, "mbpp": PythonRunner, "cpp": CppRunner, "java": JavaRunner, "go": GoRunner,
           "rust": RustRunner, "js": JsRunner}
