"""A pytest plugin for mutmut runs only (`make mutants`): `payments` is imported as `lambdas.payments`.

mutmut names a mutant after its file's path (lambdas/payments/ledger.py: `lambdas.payments.ledger.x_…`) and runs it
only where the function's `__module__` is that name. The code and the tests import the package as `payments`
(pythonpath = ["lambdas"]), so every mutant would survive. Under mutmut, `payments.X` is therefore the one module
`lambdas.payments.X`: the same mutated file under mutants/, one module object, under the name mutmut expects.
Loaded by `-p tests.mutmut_imports` in [tool.mutmut] pytest_add_cli_args; a plain pytest run never loads it.
"""

import importlib
import importlib.abc
import importlib.util
import sys

ALIASED = "payments"
REAL = "lambdas.payments"


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == ALIASED or fullname.startswith(ALIASED + "."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        # The module keeps its own __name__, __spec__ and __path__; sys.modules holds it under both names.
        return importlib.import_module(REAL + spec.name.removeprefix(ALIASED))

    def exec_module(self, module):
        pass


if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
    if ALIASED in sys.modules:
        raise ImportError(f"{ALIASED} was imported before {__name__}: its mutants would never run")
    sys.meta_path.insert(0, _Alias())
