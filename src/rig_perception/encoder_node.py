"""Encoder node: camera frames and goal images -> VAE posteriors (docs/interfaces.md: rig/latent, rig/goal_latent).

`camera/image_raw` (rgb8, bgr8 or mono8, any size) is cropped and resized by the shared preprocessing
to the checkpoint's image size, encoded, and published on `rig/latent` with the source frame's header
(so latency and alignment are measurable downstream). `rig/goal_image` is encoded the same way and
published latched on `rig/goal_latent`; it is re-encoded whenever a new checkpoint changes the latent
space. A throttled `rig/reconstruction` shows what the VAE makes of the current frame.

Checkpoints are hot-reloaded from `rig/checkpoint`; one that does not fit (image size, task) is refused
with a clear log and the old one keeps running. Bad frames are logged (throttled) and dropped.
"""
from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
import torch
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

from rig_base import qos
from rig_base.config import ConfigError
from rig_base.image_msgs import UnsupportedImage, image_to_numpy, latent_to_msg, numpy_to_image
from rig_base.node_main import run_node
from rig_base.ros_params import declare_dataclass_parameters
from rig_learn.checkpoint import CheckpointError
from rig_learn.model import InferenceModel, resolve_device
from rig_perception.preprocess import PreprocessConfig, preprocess


@dataclasses.dataclass
class EncoderConfig:
    checkpoint: str = ''
    task: str = ''
    crop_x: int = 0
    crop_y: int = 0
    crop_width: int = 0
    crop_height: int = 0
    reconstruction_period_s: float = 0.5
    device: str = 'cpu'
    torch_threads: int = 1

    def __post_init__(self):
        if min(self.crop_x, self.crop_y, self.crop_width, self.crop_height) < 0:
            raise ConfigError(f'crop_x, crop_y, crop_width and crop_height must be >= 0, got {self.crop_x}, '
                              f'{self.crop_y}, {self.crop_width}, {self.crop_height}')
        if self.reconstruction_period_s < 0:
            raise ConfigError(f'reconstruction_period_s must be >= 0 (0 disables), got {self.reconstruction_period_s}')


DESCRIPTIONS = {
    'checkpoint': "checkpoint directory to start with; '' waits for one on rig/checkpoint",
    'task': "refuse checkpoints trained for another task; '' accepts any",
    'crop_x': 'left edge of the crop in camera pixels (shared with the camera node)',
    'crop_y': 'top edge of the crop in camera pixels',
    'crop_width': 'crop width in pixels; 0 = the full frame',
    'crop_height': 'crop height in pixels; 0 = the full frame',
    'reconstruction_period_s': 'minimum time between rig/reconstruction images; 0 disables them',
    'torch_threads': 'torch intra-op threads; 1 is fastest for one small frame and leaves cores to the rest',
    'device': 'torch device for the VAE: cpu or cuda',
}
#: Settable at run time (`ros2 param set`): read at each frame. The rest is read-only (checkpoint, task
#: check, device and threads are set up at start).
LIVE_PARAMETERS = ('crop_x', 'crop_y', 'crop_width', 'crop_height', 'reconstruction_period_s')


class EncoderNode(Node):
    def __init__(self, cfg: EncoderConfig | None = None, **node_kwargs):
        super().__init__('encoder', **node_kwargs)
        self.cfg: EncoderConfig = declare_dataclass_parameters(self, cfg or EncoderConfig(), DESCRIPTIONS,
                                                                 live=LIVE_PARAMETERS)
        torch.set_num_threads(max(1, self.cfg.torch_threads))
        resolve_device(self.cfg.device)   # -p device:=cuda without a GPU: one clear line, exit 2, at start
        self.model = None
        self.checkpoint_path = ''
        self.goal_rgb: np.ndarray | None = None
        self.goal_header = None
        self._last_recon = 0.0
        self.frames_encoded = 0
        self.frames_dropped = 0
        self.stopped = False

        self.latent_pub = self.create_publisher(Image, 'rig/latent', qos.LATENT_QOS)
        self.goal_latent_pub = self.create_publisher(Image, 'rig/goal_latent', qos.GOAL_LATENT_QOS)
        self.recon_pub = self.create_publisher(Image, 'rig/reconstruction', qos.RECONSTRUCTION_QOS)
        self.create_subscription(Image, 'camera/image_raw', self._on_frame, qos.CAMERA_SUBSCRIBER_QOS)
        self.create_subscription(Image, 'rig/goal_image', self._on_goal_image, qos.GOAL_IMAGE_QOS)
        self.create_subscription(String, 'rig/checkpoint', self._on_checkpoint, qos.CHECKPOINT_QOS)
        if self.cfg.checkpoint:
            self.load(self.cfg.checkpoint)

    # -- checkpoints --------------------------------------------------------------------------------
    def load(self, path: str) -> bool:
        """Load a checkpoint; on any problem keep the current one and say why."""
        expected = {'task': self.cfg.task} if self.cfg.task else {}
        if self.model is not None:
            # The latent space may change, the picture size may not: the camera crop was set up for it.
            expected['image_size'] = self.model.spec['image_size']
        try:
            model = InferenceModel.load(path, expected=expected, device=self.cfg.device)
        except (CheckpointError, OSError, ValueError) as exc:
            self.get_logger().error(f'refusing checkpoint {path}: {exc}; keeping '
                                    f'{self.checkpoint_path or "none"}')
            return False
        if model.vae is None:
            self.get_logger().error(f'refusing checkpoint {path}: mode {model.cfg.mode!r} has no VAE')
            return False
        self.model, self.checkpoint_path = model, str(path)
        self.get_logger().info(f'encoder using {path} (latent {model.spec["latent_dim"]}, '
                               f'{model.spec["image_size"]}px)')
        if self.goal_rgb is not None:
            self._publish_goal()
        return True

    def _on_checkpoint(self, msg: String) -> None:
        if msg.data and msg.data != self.checkpoint_path and not self.stopped:
            self.load(msg.data)

    def on_parameters_changed(self, old: EncoderConfig, new: EncoderConfig) -> None:
        """A new crop applies from the next frame; the goal is re-encoded with it at once."""
        crop = ('crop_x', 'crop_y', 'crop_width', 'crop_height')
        if any(getattr(old, f) != getattr(new, f) for f in crop) and self.model is not None \
                and self.goal_rgb is not None:
            self._publish_goal()

    def stop(self) -> None:
        """Shutting down: load no more checkpoints (the trainer announces a last one as it stops)."""
        self.stopped = True

    # -- frames -------------------------------------------------------------------------------------
    def _crop(self) -> PreprocessConfig:
        """The configured crop, resized to the loaded checkpoint's image size."""
        return PreprocessConfig(self.cfg.crop_x, self.cfg.crop_y, self.cfg.crop_width, self.cfg.crop_height,
                                size=self.model.spec['image_size'])

    def _prepare(self, msg: Image, what: str) -> np.ndarray | None:
        try:
            return preprocess(image_to_numpy(msg), self._crop())
        except (UnsupportedImage, ValueError) as exc:
            self.frames_dropped += 1
            self.get_logger().error(f'dropping {what}: {exc}', throttle_duration_sec=2.0)
            return None

    def _on_frame(self, msg: Image) -> None:
        if self.model is None:
            self.get_logger().info('no checkpoint yet: waiting for rig/checkpoint', throttle_duration_sec=5.0)
            return
        image = self._prepare(msg, 'camera frame')
        if image is None:
            return
        mean, logvar = self.model.encode(image)  # one image in: (latent_dim,) out
        self.latent_pub.publish(latent_to_msg(mean, logvar, msg.header))
        self.frames_encoded += 1
        now = time.monotonic()
        if self.cfg.reconstruction_period_s > 0 and now - self._last_recon >= self.cfg.reconstruction_period_s:
            self._last_recon = now
            recon = self.model.decode(mean)
            self.recon_pub.publish(numpy_to_image(recon, 'rgb8', stamp=msg.header.stamp,
                                                  frame_id=msg.header.frame_id))

    def _on_goal_image(self, msg: Image) -> None:
        try:
            self.goal_rgb = image_to_numpy(msg)
        except UnsupportedImage as exc:
            self.get_logger().error(f'ignoring goal image: {exc}')
            return
        self.goal_header = msg.header
        self.get_logger().info(f'new goal image {msg.width}x{msg.height} ({msg.encoding})')
        if self.model is not None:
            self._publish_goal()

    def _publish_goal(self) -> None:
        size = self.model.spec['image_size']
        try:
            # A goal image already at the learner's size (e.g. from the sim) is used as it is.
            image = (self.goal_rgb if self.goal_rgb.shape[:2] == (size, size)
                     else preprocess(self.goal_rgb, self._crop()))
        except ValueError as exc:
            self.get_logger().error(f'ignoring goal image: {exc}')
            return
        mean, logvar = self.model.encode(image)
        self.goal_latent_pub.publish(latent_to_msg(mean, logvar, self.goal_header))


def main(args=None) -> int:
    return run_node(EncoderNode, 'encoder', args)


if __name__ == '__main__':
    sys.exit(main())
