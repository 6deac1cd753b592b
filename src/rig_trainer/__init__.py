"""Episode recording (rosbag2 MCAP) and the online trainer that learns from the recorded bags."""
