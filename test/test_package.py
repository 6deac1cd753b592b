"""The repo is one ament_python ROS 2 package: colcon must see it as such and install the ROS tree."""
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).parent / 'colcon'
sys.path.insert(0, str(REPO))


def _node_names():
    import ast
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'NODES':
            return ast.literal_eval(node.value)
    raise AssertionError('setup.py defines no NODES table')


def test_package_xml_is_format3_ament_python():
    root = ET.parse(REPO / 'package.xml').getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'rig'
    assert root.find('export/build_type').text == 'ament_python'
    email = root.find('maintainer').get('email')
    assert '@' in email and '.' in email.split('@')[1]
    deps = {e.text for e in root.findall('exec_depend')}
    assert {'rclpy', 'sensor_msgs', 'geometry_msgs', 'std_msgs', 'std_srvs'} <= deps


def test_every_node_executable_imports():
    for name, target in _node_names().items():
        module, func = target.split(':')
        mod = __import__(module, fromlist=[func])
        assert callable(getattr(mod, func)), f'{name}: {target} is not callable'


@pytest.mark.slow
def test_colcon_builds_ros_ament_python_tree(tmp_path):
    if not COLCON.exists():
        pytest.fail(f'colcon not installed in the venv ({COLCON}); run make venv')
    ws = tmp_path / 'ws' / 'src' / 'rig'
    shutil.copytree(REPO, ws, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'build', 'install', 'log', 'runs', 'data', '__pycache__', '*.egg-info',
        '.pytest_cache', 'results', 'img'))
    ws_root = tmp_path / 'ws'
    listed = subprocess.run([str(COLCON), 'list'], cwd=ws_root, capture_output=True, text=True, check=True)
    assert 'rig' in listed.stdout and '(ros.ament_python)' in listed.stdout, listed.stdout
    build = subprocess.run([str(COLCON), 'build'], cwd=ws_root, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    prefix = ws_root / 'install' / 'rig'
    assert (prefix / 'share/ament_index/resource_index/packages/rig').exists()
    assert (prefix / 'share/rig/package.xml').exists()
    for name in _node_names():
        assert (prefix / 'lib/rig' / name).exists(), f'ros2 run rig {name} would not be found'
    assert (prefix / 'lib/rig/rig').exists()
    for sub in ('launch', 'config', 'sim'):
        src_files = sorted(p.name for p in (REPO / sub).iterdir()
                           if p.suffix in ('.py', '.yaml', '.xml', '.md') and p.is_file())
        installed = sorted(p.name for p in (prefix / 'share/rig' / sub).iterdir())
        wanted = [n for n in src_files if sub != 'launch' or 'launch.' in n]
        assert set(wanted) <= set(installed), (sub, wanted, installed)
    site = next((prefix / 'lib').glob('python3.*/site-packages'))
    for pkg in ('rig', 'rig_sim', 'rig_learn', 'rig_perception', 'rig_policy', 'rig_trainer'):
        if (REPO / 'src' / pkg / '__init__.py').exists():
            assert (site / pkg / '__init__.py').exists(), pkg
