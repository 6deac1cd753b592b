"""Policy node: current latent + goal latent -> `rig/cmd_raw` (end-effector velocity, base_link).

Operator mode (default): the goal is the operator's (`rig/goal_image` -> encoder -> `rig/goal_latent`);
the policy acts without noise for `operator_steps` steps per goal, sends one zero command, and then
stays silent until the next goal (the safety filter's watchdog keeps the arm stopped).
Practice mode (`rig/practice` SetBool): the robot practises on its own. Each episode samples an
*imagined* goal from the checkpoint's VAE goal prior (N(0, I), a Gaussian fitted to the latents
the trainer has seen, or those latents themselves; see VAEConfig.goal_prior), acts with exploration noise for
`episode_length` steps, announces start/end on `rig/episode` (with the goal latent, so the trainer
can relabel with it), and resets: `sim/reset` in simulation, or a home-pose command on a robot (`reset_service` empty).

Every command answers one latent and carries that frame's stamp, so the safety filter can refuse
commands that come too late. Checkpoints are hot-reloaded from `rig/checkpoint`; one that does not
fit (another task or action size, or made for another action scale or control rate than this node's)
is refused and the old one keeps driving. Each episode's start event records the action scale,
control rate and action size its commands are made with: the trainer turns them back into actions
with those (docs/interfaces.md, "Scales"). Before any checkpoint has trained (no gradient step
yet), practice uses uniform random actions: that is the random-action data the VAE is pretrained on.
A non-empty reason on `rig/practice_hold` (latched; the learner link sends one while the learner
host is unreachable) holds practice: the open episode ends, one zero command is sent, and the policy
is silent until the hold is released with ''. Operator mode is not held.
"""
from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import torch
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from rig_base import qos
from rig_base.config import ConfigError
from rig_base.image_msgs import UnsupportedImage, msg_to_latent
from rig_base.msgs import stamp_ns, velocity_twist
from rig_base.node_main import run_node
from rig_base.ros_params import declare_dataclass_parameters
from rig_learn.checkpoint import CheckpointError
from rig_learn.model import SCALE_KEYS, InferenceModel, check_scales, resolve_device, same_scale


@dataclasses.dataclass
class PolicyConfig:
    checkpoint: str = ''
    task: str = ''
    practice_on_start: bool = False
    episode_length: int = 50
    operator_steps: int = 50
    action_scale: float = 0.02
    control_rate_hz: float = 20.0
    exploration_noise: float = -1.0
    max_latency_s: float = 0.15
    reset_service: str = 'sim/reset'
    seed: int = 0
    frame_id: str = 'base_link'
    device: str = 'cpu'
    torch_threads: int = 1

    def __post_init__(self):
        if self.control_rate_hz <= 0 or self.action_scale <= 0:
            raise ConfigError(f'control_rate_hz and action_scale must be > 0, got control_rate_hz='
                              f'{self.control_rate_hz} action_scale={self.action_scale}')
        if self.episode_length < 1 or self.operator_steps < 1:
            raise ConfigError(f'episode_length and operator_steps must be >= 1, got episode_length='
                              f'{self.episode_length} operator_steps={self.operator_steps}')
        if self.max_latency_s <= 0:
            raise ConfigError(f'max_latency_s must be > 0, got {self.max_latency_s}')


DESCRIPTIONS = {
    'checkpoint': "checkpoint directory to start with; '' waits for one on rig/checkpoint",
    'task': "refuse checkpoints trained for another task; '' accepts any",
    'practice_on_start': 'start in practice mode (imagined goals) instead of operator mode',
    'episode_length': 'practice: steps per episode before a reset',
    'operator_steps': 'operator mode: steps spent reaching each goal before holding still',
    'action_scale': 'metres per step at action 1.0; velocity = action * action_scale * control_rate_hz',
    'control_rate_hz': 'control rate of the graph (frames per second in real time)',
    'exploration_noise': "practice: sigma of the learner's action noise (TD3); negative = the checkpoint's",
    'max_latency_s': 'latents older than this (by source stamp) are not acted on',
    'reset_service': "Trigger service that resets the scene between practice episodes; '' = none",
    'seed': 'seed of imagined goals and exploration noise',
    'frame_id': 'frame of rig/cmd_raw',
    'torch_threads': 'torch intra-op threads; 1 is fastest for one small frame and leaves cores to the rest',
    'device': 'torch device for the policy: cpu or cuda',
}
#: Settable at run time (`ros2 param set`): read at each step. The rest is read-only: it sets up
#: topics, services, the seed or the device, or (action_scale, control_rate_hz) is what the episodes record
#: and the checkpoints are checked against.
LIVE_PARAMETERS = ('episode_length', 'operator_steps', 'exploration_noise', 'max_latency_s')


class PolicyNode(Node):
    def __init__(self, cfg: PolicyConfig | None = None, **node_kwargs):
        super().__init__('policy', **node_kwargs)
        self.cfg: PolicyConfig = declare_dataclass_parameters(self, cfg or PolicyConfig(), DESCRIPTIONS,
                                                                live=LIVE_PARAMETERS)
        self.rng = np.random.default_rng(self.cfg.seed)
        torch.set_num_threads(max(1, self.cfg.torch_threads))
        resolve_device(self.cfg.device)   # -p device:=cuda without a GPU: one clear line, exit 2, at start
        self.model = None
        self.checkpoint_path = ''
        self.practice = self.cfg.practice_on_start
        self.goal_latent: np.ndarray | None = None
        self._goal_stamp = 0        # header stamp [ns] of the goal image behind goal_latent
        self.goal_source = 'operator'
        self.episode = 0
        self.step_in_episode = 0
        self.episode_open = False
        self.resetting = False
        self._reset_requested_ns = 0
        self._pending_latent: Image | None = None
        self._unanswered: Image | None = None   # newest latent not acted on (operator mode, no goal)
        self.operator_done = False
        self.practice_goal: np.ndarray | None = None
        self.commands_sent = 0
        self.stopped = False        # shutting down: act on nothing more
        self.hold_reason = ''       # non-empty: practice is held (rig/practice_hold) and the arm still

        self.cmd_pub = self.create_publisher(TwistStamped, 'rig/cmd_raw', qos.COMMAND_QOS)
        self.episode_pub = self.create_publisher(String, 'rig/episode', qos.EPISODE_QOS)
        # The checkpoint that drives the arm now (latched): `ros2 topic echo policy/checkpoint`.
        self.in_use_pub = self.create_publisher(String, '~/checkpoint', qos.LATCHED_QOS)
        self.create_subscription(Image, 'rig/latent', self._on_latent, qos.LATENT_QOS)
        self.create_subscription(Image, 'rig/goal_latent', self._on_goal_latent, qos.GOAL_LATENT_QOS)
        self.create_subscription(String, 'rig/checkpoint', self._on_checkpoint, qos.CHECKPOINT_QOS)
        self.create_subscription(String, 'rig/practice_hold', self._on_practice_hold, qos.PRACTICE_HOLD_QOS)
        self.create_service(SetBool, 'rig/practice', self._on_practice)
        self.reset_client = (self.create_client(Trigger, self.cfg.reset_service)
                             if self.cfg.reset_service else None)
        if self.cfg.checkpoint:
            self.load(self.cfg.checkpoint)
        self.get_logger().info(f'policy up in {"practice" if self.practice else "operator"} mode')

    # -- checkpoints --------------------------------------------------------------------------------
    def load(self, path: str) -> bool:
        expected = {'task': self.cfg.task} if self.cfg.task else {}
        if self.model is not None:
            expected['action_dim'] = self.model.spec['action_dim']
        try:
            model = InferenceModel.load(path, expected=expected, device=self.cfg.device)
            check_scales(model.spec, self._scales(), str(path), who='this policy')
        except (CheckpointError, OSError, ValueError) as exc:
            self.get_logger().error(f'refusing checkpoint {path}: {exc}; keeping {self.checkpoint_path or "none"}')
            return False
        if model.vae is None:
            self.get_logger().error(f'refusing checkpoint {path}: mode {model.cfg.mode!r} has no latent goals')
            return False
        if any(model.spec.get(k) is None for k in SCALE_KEYS):
            env_scale = model.spec.get('env_action_scale')
            if env_scale is not None and not same_scale(env_scale, self.cfg.action_scale):
                self.get_logger().warning(
                    f'checkpoint {path} was trained (rig train) in an env of {env_scale} m per step at action 1.0; '
                    f'this policy moves {self.cfg.action_scale} m per step at action 1.0 (action_scale)')
            else:
                self.get_logger().info(f'checkpoint {path} records no action scale or control rate (trained on '
                                       'no recorded episode yet, or by rig train): not checked')
        if self.model is not None and model.spec['latent_dim'] != self.model.spec['latent_dim']:
            self.goal_latent = None  # an operator goal from the old latent space means nothing now
        self.model, self.checkpoint_path = model, str(path)
        self.in_use_pub.publish(String(data=self.checkpoint_path))
        self.get_logger().info(f'policy using {path} ({model.counters.get("grad_steps", 0)} gradient steps)')
        return True

    def _scales(self) -> dict:
        return {'action_scale': float(self.cfg.action_scale), 'control_rate_hz': float(self.cfg.control_rate_hz)}

    def _on_checkpoint(self, msg: String) -> None:
        if msg.data and msg.data != self.checkpoint_path and not self.stopped:
            self.load(msg.data)

    # -- modes --------------------------------------------------------------------------------------
    def set_practice(self, on: bool) -> None:
        """Switch between practice (imagined goals) and operator mode; the open episode ends. Back in
        operator mode the arm waits for the operator's next goal: an earlier goal is not taken up again."""
        if on != self.practice:
            self._end_episode()
            self.practice = bool(on)
            self.operator_done = not self.practice
            self.get_logger().info('practice started' if self.practice else 'practice stopped: operator mode')
            waiting, self._unanswered = self._unanswered, None
            if self.practice and waiting is not None:
                self._on_latent(waiting)   # a fresh frame waiting for an answer: practise from it

    def _on_practice_hold(self, msg: String) -> None:
        """`rig/practice_hold` (latched): a non-empty reason holds practice (the learner link sends one
        while the learner is unreachable), '' releases it. Operator mode is unaffected."""
        reason = msg.data.strip()
        if reason == self.hold_reason:
            return
        was_held, self.hold_reason = self.hold_reason, reason
        if reason:
            self.get_logger().warning(f'practice held: {reason}')
            if self.practice and self.episode_open:
                self._end_episode(reason='hold')
                self._send_zero()
        elif was_held:
            self.get_logger().info('practice hold released: practising again')
            waiting, self._unanswered = self._unanswered, None
            if self.practice and waiting is not None:
                # a frame that has grown old meanwhile is left quietly for the next one (in lockstep
                # the bridge's stall republish)
                self._on_latent(waiting, quiet_if_old=True)

    def _on_practice(self, request, response):
        self.set_practice(bool(request.data))
        response.success = True
        response.message = 'practice' if self.practice else 'operator'
        return response

    def _on_goal_latent(self, msg: Image) -> None:
        try:
            mean, _ = msg_to_latent(msg)
        except UnsupportedImage as exc:
            self.get_logger().error(f'ignoring goal latent: {exc}')
            return
        if self.model is not None and mean.shape[0] != self.model.spec['latent_dim']:
            self.get_logger().error(f'ignoring goal latent of size {mean.shape[0]}, policy expects '
                                    f'{self.model.spec["latent_dim"]}')
            return
        stamp = stamp_ns(msg.header.stamp)
        same_goal = self.goal_latent is not None and stamp == self._goal_stamp and stamp != 0
        self.goal_latent, self._goal_stamp = mean, stamp
        if same_goal:
            return  # the same goal image re-encoded by a new checkpoint: the episode goes on towards it
        if not self.practice:
            self._end_episode()
            self.operator_done = False
            self.get_logger().info('new operator goal')
            waiting, self._unanswered = self._unanswered, None
            if waiting is not None:
                # The newest frame came before the goal and went unanswered; act on it now if it is
                # still fresh (`_on_latent` checks its age) rather than wait for the next one (in
                # lockstep there is none until a command, only the bridge's stall republish).
                self._on_latent(waiting)

    # -- episodes -----------------------------------------------------------------------------------
    def _publish_event(self, kind: str, **extra) -> None:
        event = {'event': kind, 'episode': self.episode, **extra}
        self.episode_pub.publish(String(data=json.dumps(event)))

    def _start_episode(self) -> None:
        self.episode += 1
        self.step_in_episode = 0
        self.episode_open = True
        self.model.reset_exploration()
        if self.practice:
            self.goal_source = 'imagined'
            self.practice_goal = self.model.goals.sample(1, self.rng)[0]
            goal = self.practice_goal
        else:
            self.goal_source = 'operator'
            goal = self.goal_latent
        # What the commands of this episode are made with, for whoever turns them back into actions.
        self._publish_event('start', goal_source=self.goal_source, goal_latent=[float(x) for x in goal],
                            checkpoint=self.checkpoint_path, **self._scales(),
                            action_dim=int(self.model.spec['action_dim']))

    def _end_episode(self, reason: str = '') -> None:
        if not self.episode_open:
            return
        self.episode_open = False
        self._publish_event('end', steps=self.step_in_episode, **({'reason': reason} if reason else {}))
        if self.practice and self.reset_client is not None and reason != 'shutdown':
            self.resetting = True
            self._pending_latent = None
            self._reset_requested_ns = self.get_clock().now().nanoseconds
            if not self.reset_client.service_is_ready():
                self.get_logger().warning(f'{self.cfg.reset_service} not available: continuing without reset',
                                          throttle_duration_sec=10.0)
                self.resetting = False
                return
            self.reset_client.call_async(Trigger.Request()).add_done_callback(self._on_reset_done)

    def _on_reset_done(self, future) -> None:
        self.resetting = False
        result = future.result()
        if result is None or not result.success:
            self.get_logger().error('reset failed; the next episode starts where this one ended')
        pending, self._pending_latent = self._pending_latent, None
        if pending is not None and stamp_ns(pending.header.stamp) >= self._reset_requested_ns:
            self._on_latent(pending)  # the frame after the reset came first: act on it now

    # -- acting -------------------------------------------------------------------------------------
    def _on_latent(self, msg: Image, quiet_if_old: bool = False) -> None:
        if self.model is None or self.stopped:
            return
        if self.resetting:
            self._pending_latent = msg  # the reset's first frame may arrive before the service reply
            return
        try:
            mean, _ = msg_to_latent(msg)
        except UnsupportedImage as exc:
            self.get_logger().error(f'dropping latent: {exc}', throttle_duration_sec=2.0)
            return
        if mean.shape[0] != self.model.spec['latent_dim']:
            self.get_logger().warning('latent from another checkpoint (encoder reloading?): skipped',
                                      throttle_duration_sec=2.0)
            return
        age = self._age_s(msg)
        if age > self.cfg.max_latency_s:
            if not quiet_if_old:
                self.get_logger().warning(f'latent {age * 1e3:.0f} ms old: not acting on it',
                                          throttle_duration_sec=2.0)
            return
        if self.practice:
            if self.hold_reason:
                self._unanswered = msg   # silent while held (the safety filter's watchdog holds the arm)
                return
            if self.episode_open and self.step_in_episode >= self.cfg.episode_length:
                self._end_episode()
                if self.resetting:
                    return  # act on the first frame after the reset
            if not self.episode_open:
                self._start_episode()
        else:
            if self.goal_latent is None or self.operator_done:
                # silent until the next goal (the safety filter's watchdog holds the arm); the newest
                # frame is kept to act on at once when it comes
                self._unanswered = msg
                return
            self._unanswered = None
            if not self.episode_open:
                self._start_episode()
            if self.step_in_episode >= self.cfg.operator_steps:
                self._end_episode()
                self.operator_done = True
                self._send_zero(msg.header.stamp)  # stop now
                return
        self._send(self.compute_action(mean), msg.header.stamp)
        self.step_in_episode += 1

    def _age_s(self, msg: Image) -> float:
        """How old a latent's source frame is (0 for an unstamped one)."""
        sent_ns = stamp_ns(msg.header.stamp)
        return (self.get_clock().now().nanoseconds - sent_ns) * 1e-9 if sent_ns else 0.0

    def compute_action(self, latent_mean: np.ndarray) -> np.ndarray:
        """Action in [-1, 1]: the actor's, plus exploration noise in practice (random before training)."""
        dim = self.model.spec['action_dim']
        if self.practice and self.model.counters.get('grad_steps', 0) == 0:
            return self.rng.uniform(-1.0, 1.0, dim).astype(np.float32)
        if not self.practice:
            return self.model.act_features(latent_mean, self.goal_latent)
        # The learner's own exploration (SAC sampling, TD3 Gaussian or OU noise), as in `rig train`;
        # this node's generator, so a hot-swapped checkpoint does not replay the same noise.
        scale = self.cfg.exploration_noise if self.cfg.exploration_noise >= 0 else None
        return self.model.explore_features(latent_mean, self.practice_goal, rng=self.rng, scale=scale)

    def _send(self, action: np.ndarray, stamp) -> None:
        velocity = np.zeros(3)
        velocity[:len(action)] = np.asarray(action, float) * self.cfg.action_scale * self.cfg.control_rate_hz
        # stamped with the frame this command answers (docs/interfaces.md)
        self.cmd_pub.publish(velocity_twist(velocity, stamp, self.cfg.frame_id))
        self.commands_sent += 1

    def stop(self) -> None:
        """On the way out: end the episode (so its bag closes) and send a zero command; act no more."""
        self.stopped = True
        self._end_episode(reason='shutdown')
        self._send_zero()

    def _send_zero(self, stamp=None) -> None:
        """A zero command, stamped with the frame it answers, or now where none is (hold, shutdown)."""
        self._send(np.zeros(3), stamp if stamp is not None else self.get_clock().now().to_msg())


def main(args=None) -> int:
    return run_node(PolicyNode, 'policy', args)


if __name__ == '__main__':
    sys.exit(main())
