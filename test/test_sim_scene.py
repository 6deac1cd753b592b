"""RigScene against real MuJoCo: building, rendering, hand control, contacts, teleporting."""
import numpy as np
import pytest

from rig_sim import ARMS, TASKS, RigScene, SimConfig
from rig_sim.tasks import PLANAR_HAND_Z, door_handle_gap_xy

STATE_SIZES = {'reach': 3, 'push': 5, 'door': 4}
JOINT_COUNTS = {'sawyer': 7, 'ur5e': 6}


def assert_not_blank(image):
    """A real frame has many distinct colours; a failed render is one flat colour (often black)."""
    assert image.std() > 10, 'blank frame'
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 8


@pytest.fixture(scope='module')
def scenes():
    """One scene per task and arm, shared by the tests of this module (they reset it first)."""
    built = {(task, arm): RigScene(SimConfig(task=task, arm=arm)) for task in TASKS for arm in ARMS}
    yield built
    for scene in built.values():
        scene.close()


@pytest.mark.parametrize('arm', ARMS)
@pytest.mark.parametrize('task', TASKS)
def test_builds_and_renders_every_task_and_arm(scenes, task, arm):
    scene = scenes[task, arm]
    scene.reset()
    image = scene.render()
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert_not_blank(image)
    overview = scene.render(256, 256, 'overview')
    assert overview.shape == (256, 256, 3)
    assert_not_blank(overview)
    assert scene.state().shape == (STATE_SIZES[task],)
    np.testing.assert_allclose(scene.ee_pos(), scene.task.hand_home, atol=1e-4)
    assert len(scene.joint_names) == JOINT_COUNTS[arm] == len(scene.joint_positions())
    assert len(scene.joint_velocities()) == JOINT_COUNTS[arm]
    np.testing.assert_allclose(scene.ee_pos_base(), scene.ee_pos(), atol=1e-9)  # base at origin
    # Hand tool points down: its z axis is world -z.
    w, x, y, z = scene.ee_quat()
    tool_z_world_z = 1 - 2 * (x * x + y * y)
    assert tool_z_world_z == pytest.approx(-1, abs=1e-3)


@pytest.mark.parametrize('fidelity', ['collision', 'visual'])
def test_other_mesh_fidelities_render(fidelity):
    with RigScene(SimConfig(task='push', arm='ur5e', mesh_fidelity=fidelity)) as scene:
        assert_not_blank(scene.render())


@pytest.mark.parametrize('arm', ARMS)
def test_action_moves_hand_by_action_scale_and_changes_the_image(scenes, arm):
    scene = scenes['reach', arm]
    scene.reset()
    before_image = scene.render()
    start = scene.ee_pos()
    for direction in ([1, 0, 0], [0, 1, 0], [0, -1, 0]):
        achieved = scene.move_ee(np.array(direction) * 0.02)
        assert achieved @ np.array(direction) == pytest.approx(0.02, rel=0.1)
        assert np.linalg.norm(achieved - np.array(direction) * 0.02) < 0.003
    assert np.linalg.norm(scene.ee_pos() - start - [0.02, 0, 0]) < 0.005
    assert np.abs(scene.render().astype(int) - before_image).sum() > 1000


def test_reset_noise_jitters_the_start_reproducibly():
    with RigScene(SimConfig(task='push', reset_noise=0.03)) as scene:
        starts = []
        for seed in (1, 1, 2):
            scene.reset(np.random.default_rng(seed))
            starts.append(scene.ee_pos())
        home = np.array(scene.task.hand_home)
        np.testing.assert_array_equal(starts[0], starts[1])
        assert not np.allclose(starts[0], starts[2])
        for start in starts:
            offset = start - home
            assert 1e-4 < np.abs(offset[:2]).max() <= 0.03 + 1e-4 and abs(offset[2]) < 1e-4
        np.testing.assert_allclose(scene.state()[3:5], [0.55, 0.0])   # the puck is not jittered


def test_deltas_are_clipped_to_action_scale_and_workspace(scenes):
    scene = scenes['push', 'sawyer']
    scene.reset()
    achieved = scene.move_ee(np.array([1.0, -1.0, 1.0]))
    assert np.all(np.abs(achieved) <= 0.02 * 1.02)
    assert scene.ee_pos()[2] == pytest.approx(PLANAR_HAND_Z, abs=1e-3)   # planar: z ignored
    for _ in range(30):
        scene.move_ee(np.array([-0.02, -0.02, 0.0]))
    np.testing.assert_allclose(scene.ee_pos()[:2], scene.workspace_low[:2], atol=2e-3)


def test_door_workspace_is_three_dimensional_and_clipped(scenes):
    scene = scenes['door', 'ur5e']
    scene.reset()
    for _ in range(20):
        scene.move_ee(np.array([-0.02, 0.02, 0.02]))
    hand = scene.ee_pos()
    assert np.all(hand >= scene.workspace_low - 2e-3) and np.all(hand <= scene.workspace_high + 2e-3)
    np.testing.assert_allclose(hand, [scene.workspace_low[0], scene.workspace_high[1],
                                      scene.workspace_high[2]], atol=2e-3)


@pytest.mark.parametrize('arm', ARMS)
def test_hand_holds_still_without_commands(scenes, arm):
    """Gravity is compensated: the weld holds the hand exactly and the arm does not drift."""
    scene = scenes['door', arm]
    scene.reset()
    start = scene.ee_pos()
    for _ in range(20):
        scene.move_ee(np.zeros(3))
    assert np.abs(scene.ee_pos() - start).max() < 5e-4
    assert np.abs(scene.joint_velocities()).max() < 0.01


@pytest.mark.parametrize('arm', ARMS)
def test_joints_stay_within_limits(scenes, arm):
    scene = scenes['door', arm]
    scene.reset()
    rng = np.random.default_rng(0)
    low, high = scene._arm_joint_range.T
    for _ in range(60):
        scene.move_ee(rng.uniform(-0.02, 0.02, 3))
        q = scene.joint_positions()
        assert np.all(q >= low - 1e-3) and np.all(q <= high + 1e-3)
    assert np.all(np.isfinite(scene.joint_velocities()))


@pytest.mark.parametrize('arm', ARMS)
def test_driving_the_hand_into_the_puck_moves_it(scenes, arm):
    scene = scenes['push', arm]
    scene.reset()
    puck_start = scene.state()[3:5].copy()
    for _ in range(10):   # the hand starts on the robot's side of the puck; push it away (+x)
        scene.move_ee(np.array([0.02, 0.0, 0.0]))
    puck = scene.state()[3:5]
    assert puck[0] - puck_start[0] > 0.05
    assert abs(puck[1] - puck_start[1]) < 0.03


@pytest.mark.parametrize('arm', ARMS)
def test_the_hand_can_get_round_the_puck_and_push_it_towards_the_robot(scenes, arm):
    """Every push direction is open from the start: the hand passes the puck without touching it."""
    scene = scenes['push', arm]
    scene.reset()
    puck_start = scene.state()[3:5].copy()
    x_low, x_high = scene.workspace_low[0], scene.workspace_high[0]
    for corner in ([x_low, 0.09], [x_high, 0.09], [x_high, 0.0]):   # round the +y side to behind
        drive_to(scene, [*corner, PLANAR_HAND_Z], 12)
        np.testing.assert_allclose(scene.ee_pos()[:2], corner, atol=3e-3)
    np.testing.assert_allclose(scene.state()[3:5], puck_start, atol=2e-3)   # untouched
    for _ in range(8):
        scene.move_ee(np.array([-0.02, 0.0, 0.0]))
    assert puck_start[0] - scene.state()[3] > 0.05


def drive_to(scene, target, steps):
    for _ in range(steps):
        scene.move_ee(np.asarray(target) - scene.ee_pos())


@pytest.mark.parametrize('arm', ARMS)
def test_pulling_the_handle_opens_and_pushing_it_closes_the_door(scenes, arm):
    scene = scenes['door', arm]
    scene.reset()
    gap = door_handle_gap_xy(0.0)
    drive_to(scene, [*gap, 0.25], 15)
    drive_to(scene, [*gap, 0.14], 10)          # lower the hand into the handle gap
    assert scene.state()[3] == pytest.approx(0.0, abs=0.02)
    for _ in range(8):
        scene.move_ee(np.array([-0.02, 0.0, 0.0]))
    opened = scene.state()[3]
    assert opened > 0.2
    for _ in range(8):                         # push the door face inside the gap
        scene.move_ee(np.array([0.02, 0.0, 0.0]))
    assert scene.state()[3] < opened - 0.15


@pytest.mark.parametrize('task, state', [
    ('reach', [0.47, 0.15, PLANAR_HAND_Z]),
    ('push', [0.62, -0.1, PLANAR_HAND_Z, 0.5, 0.12]),
    ('door', [*door_handle_gap_xy(0.6), 0.14, 0.6]),
])
def test_set_state_teleports_exactly_and_reproducibly(scenes, task, state):
    scene = scenes[task, 'sawyer']
    scene.reset()
    scene.move_ee(np.array([0.02, 0.02, 0.0]))
    scene.set_state(state)
    np.testing.assert_allclose(scene.state(), state, atol=1e-3)
    image = scene.render()
    scene.reset()
    scene.set_state(state)
    np.testing.assert_array_equal(scene.render(), image)   # independent of the previous state
    with pytest.raises(ValueError, match='state'):
        scene.set_state(state[:-1])
    with pytest.raises(ValueError, match='cannot put its hand'):
        scene.set_state([2.0, *state[1:]])     # out of the arm's reach


def test_physics_state_restore_continues_identically(scenes):
    scene = scenes['push', 'ur5e']
    scene.reset()
    scene.move_ee(np.array([0.02, 0.01, 0]))
    saved = scene.snapshot()
    first = [scene.move_ee(np.array([0.02, -0.01, 0])) for _ in range(3)]
    scene.set_state([0.5, 0.1, PLANAR_HAND_Z, 0.6, -0.1])
    scene.restore(saved)
    second = [scene.move_ee(np.array([0.02, -0.01, 0])) for _ in range(3)]
    np.testing.assert_array_equal(first, second)


def test_closing_one_scene_leaves_others_rendering():
    """SIM_NOTES: freeing one renderer can silently blank another's frames."""
    first = RigScene(SimConfig(task='reach'))
    second = RigScene(SimConfig(task='push', arm='ur5e'))
    first.render()
    expected = second.render()
    first.close()
    image = second.render()
    assert_not_blank(image)
    np.testing.assert_array_equal(image, expected)
    second.close()
