"""ament_python package `rig`: RIG (Visual RL with Imagined Goals) on ROS 2.

Executables go to lib/rig (setup.cfg) so `ros2 run rig <exe>` and launch files find them; the
`rig` command-line tool is installed alongside them.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'rig'

# ROS executables (ros2 run rig <name>) -> module:function. Keep in sync with launch/ and config/.
NODES = {
    'sim_bridge': 'rig_sim.bridge_node:main',
    'encoder': 'rig_perception.encoder_node:main',
    'policy': 'rig_policy.policy_node:main',
    'safety_filter': 'rig_policy.safety_filter_node:main',
    'recorder': 'rig_trainer.recorder_node:main',
    'trainer': 'rig_trainer.trainer_node:main',
    'camera': 'rig_perception.camera_node:main',
    'arm_adapter': 'rig_policy.arm_adapter_node:main',
    'home': 'rig_policy.home_pose:main',
    'servo_start': 'rig_policy.servo_bridge:main',
    'sim_cell': 'rig_sim.cell_node:main',
    'learner_link': 'rig_trainer.link_node:main',
    'episode_receiver': 'rig_trainer.episode_receiver_node:main',
}

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages('src'),
    package_dir={'': 'src'},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*launch.[pxy][yma]*')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml')),
        ('share/' + PACKAGE + '/sim', glob('sim/*.xml') + glob('sim/*.md')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='rig maintainers',
    maintainer_email='maintainers@rig-robotics.org',
    description='RIG: visual reinforcement learning with imagined goals, for ROS 2 arms',
    license='MIT',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [f'{name} = {target}' for name, target in NODES.items()]
        + ['rig = rig.cli:main'],
    },
)
