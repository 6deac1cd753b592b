"""`make bench` calls every benchmark's main(argv): each must accept its argument list."""
import importlib
import inspect

import pytest

from bench.run_all import SECTIONS


@pytest.mark.parametrize('name,module_name,args', SECTIONS)
def test_every_section_has_main_taking_argv(name, module_name, args):
    module = importlib.import_module(module_name)
    params = list(inspect.signature(module.main).parameters)
    assert params and params[0] == 'argv', f'{module_name}.main must take argv'
