"""The optional C kernels: dedup.pipeline.signature's, and dedup.index.entries' naming of
entry operations; everything else is declared in pyproject.toml.

``optional=True``: on a machine without a C compiler the build warns and goes on, and
dedup.pipeline.signature computes the same signatures with numpy, dedup.index.entries the
same names in Python.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Optimise the kernel fully: its inner loop must vectorise."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for extension in self.extensions:
                extension.extra_compile_args = [*extension.extra_compile_args, "-O3"]
        super().build_extensions()


setup(
    ext_modules=[
        Extension("dedup.pipeline._minhash", ["dedup/pipeline/_minhash.c"], optional=True),
        Extension("dedup.index._naming", ["dedup/index/_naming.c"], optional=True),
    ],
    cmdclass={"build_ext": BuildExt},
)
