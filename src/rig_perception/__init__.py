"""rig_perception: camera frames to VAE inputs and latents.

`preprocess` (numpy + OpenCV only, also used by the trainer), `image_msgs` (sensor_msgs/Image <->
numpy, latent messages). Submodules are imported explicitly so that ROS-free users never load rclpy.
"""
