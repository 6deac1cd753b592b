"""rig_base: what every rig package uses, and nothing above it.

- `config`: dataclass configs from YAML, strictly (no ROS);
- `resources`: where config/ and sim/ files are, in a checkout or an installed package (no ROS);
- `qos`: the QoS profile of every topic; `msgs`: stamps and the twist <-> velocity conversion;
- `ros_params`: dataclass fields as described ROS parameters; `node_main`: the one node `main()` and
  shutdown sequence.

Layers, each importing only those before it: rig_base -> rig_learn, rig_sim -> rig_perception,
rig_policy, rig_trainer -> rig (the command line, graph composition, demo).
"""
