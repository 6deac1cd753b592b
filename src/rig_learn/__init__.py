"""rig_learn: the learning core of RIG (Visual RL with Imagined Goals, Nair et al. 2018). No ROS.

Public API:
    LearnConfig, load_config        configuration dataclasses (config/learn_<task>.yaml)
    RIGAgent (alias RIG)            from_config / learn / act / encode / evaluate / save / load
    load_checkpoint, CheckpointMismatch, CheckpointError
    evaluate, EvalResult            image-goal evaluation
    make_task_env, ToyReachEnv      environments; see rig_learn.protocol for bringing your own
"""
from .agent import RIG, DeviceUnavailable, RIGAgent, resolve_device
from .checkpoint import CheckpointError, CheckpointMismatch, load_checkpoint
from .config import EvalConfig, LearnConfig, RelabelConfig, RLConfig, VAEConfig
from .envs import make_task_env, sim_available
from .evaluate import EvalResult, evaluate, random_policy
from .protocol import ProtocolError, check_env
from .runs import load_config
from .toy_env import ToyReachEnv

__all__ = ['RIG', 'RIGAgent', 'DeviceUnavailable', 'resolve_device', 'CheckpointError', 'CheckpointMismatch',
           'load_checkpoint', 'EvalConfig', 'LearnConfig', 'RelabelConfig', 'RLConfig', 'VAEConfig',
           'make_task_env', 'sim_available', 'EvalResult', 'evaluate', 'random_policy', 'ProtocolError',
           'check_env', 'ToyReachEnv', 'load_config']
