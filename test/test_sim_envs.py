"""The gymnasium environments: spaces, goals, rewards and metrics, seeding, truncation."""
import gymnasium
import numpy as np
import pytest

from rig_sim import TASKS, make_env
from rig_sim.envs import GYM_IDS
from rig_sim.tasks import (
    DOOR_GOAL_ANGLE_RANGE,
    DOOR_SUCCESS_ANGLE,
    GOAL_REGION_HIGH,
    GOAL_REGION_LOW,
    HAND_SUCCESS_DISTANCE,
    HAND_TIP_RADIUS,
    PLANAR_HAND_Z,
    PUCK_RADIUS,
    PUCK_SUCCESS_DISTANCE,
    PUSH_HAND_HIGH,
    PUSH_HAND_LOW,
    PUSH_PUCK_GOAL_HIGH,
    PUSH_PUCK_GOAL_LOW,
    REGION_CENTRE,
)

ACTION_DIMS = {'reach': 2, 'push': 2, 'door': 3}
TASK_METRICS = {'reach': set(), 'push': {'puck_distance'}, 'door': {'door_angle_error'}}


@pytest.fixture(scope='module')
def envs():
    built = {task: make_env(task=task) for task in TASKS}
    yield built
    for env in built.values():
        env.close()


@pytest.mark.parametrize('task', TASKS)
def test_gymnasium_ids_make_checked_envs(task):
    env = gymnasium.make(GYM_IDS[task], arm='ur5e', image_size=64)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs['image'].shape == (64, 64, 3)
    assert env.action_space.shape == (ACTION_DIMS[task],)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert isinstance(reward, float) and not terminated and not truncated
    assert set(info) == {'hand_distance', 'success'} | TASK_METRICS[task]
    env.close()


@pytest.mark.parametrize('task', TASKS)
def test_observation_holds_state_and_goal(envs, task):
    env = envs[task]
    obs, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs['state'], obs['achieved_goal_state'])
    np.testing.assert_array_equal(obs['desired_goal_state'], env.goal['state'])
    np.testing.assert_array_equal(obs['desired_goal_image'], env.goal['image'])
    np.testing.assert_array_equal(obs['image'], env.scene.render())
    assert not np.array_equal(obs['image'], obs['desired_goal_image'])


@pytest.mark.parametrize('task', TASKS)
def test_goals_are_in_the_goal_region(envs, task):
    env = envs[task]
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    states = np.array([env.scene.sample_goal_state(rng) for _ in range(200)])
    if task == 'door':
        assert states[:, 3].min() >= DOOR_GOAL_ANGLE_RANGE[0]
        assert states[:, 3].max() <= DOOR_GOAL_ANGLE_RANGE[1]
        assert np.ptp(states[:, 3]) > 0.6
    elif task == 'reach':
        xy = states[:, 0:2]
        assert np.all(xy >= GOAL_REGION_LOW) and np.all(xy <= GOAL_REGION_HIGH)
        assert np.all(np.ptp(xy, axis=0) > [0.15, 0.3])   # spread over the 0.2 x 0.4 region
    else:   # push: hand goals in the hand box, puck goals in their region, never overlapping
        hand, puck = states[:, 0:2], states[:, 3:5]
        assert np.all(hand >= PUSH_HAND_LOW) and np.all(hand <= PUSH_HAND_HIGH)
        assert np.all(np.ptp(hand, axis=0) > [0.12, 0.16])   # spread over the 0.16 x 0.2 box
        assert np.all(puck >= PUSH_PUCK_GOAL_LOW) and np.all(puck <= PUSH_PUCK_GOAL_HIGH)
        assert np.all(np.ptp(puck, axis=0) > [0.15, 0.24])   # spread over the 0.2 x 0.3 region
        assert np.linalg.norm(hand - puck, axis=1).min() > PUCK_RADIUS + HAND_TIP_RADIUS
        # The hand can reach behind a puck anywhere in the puck goal region to push it there.
        contact = PUCK_RADIUS + HAND_TIP_RADIUS
        assert np.all(np.add(PUSH_PUCK_GOAL_LOW, contact) >= PUSH_HAND_LOW)
        assert np.all(np.subtract(PUSH_PUCK_GOAL_HIGH, contact) <= PUSH_HAND_HIGH)
        # ... and can pass the puck at its start on either side to get behind it (no direction of
        # push is closed from the start).
        start = np.array(REGION_CENTRE)
        assert np.all(start - PUSH_HAND_LOW >= contact) and np.all(PUSH_HAND_HIGH - start >= contact)
    if task != 'door':
        assert np.all(states[:, 2] == PLANAR_HAND_Z)


@pytest.mark.parametrize('task', TASKS)
def test_sample_goal_renders_the_goal_state_and_restores_the_episode(task):
    sampling, plain = make_env(task=task), make_env(task=task)
    sampling.reset(seed=5)
    plain.reset(seed=5)
    goals = []
    for step in range(4):
        action = np.full(ACTION_DIMS[task], 0.5 if step % 2 else -0.5)
        goals.append(sampling.sample_goal())
        obs_a = sampling.step(action)[0]
        obs_b = plain.step(action)[0]
        np.testing.assert_array_equal(obs_a['state'], obs_b['state'])   # sampling changed nothing
        np.testing.assert_array_equal(obs_a['image'], obs_b['image'])
    images = [goal['image'] for goal in goals]
    assert all(not np.array_equal(images[0], image) for image in images[1:])
    plain.scene.set_state(goals[2]['state'])
    np.testing.assert_array_equal(plain.scene.render(), goals[2]['image'])
    sampling.close()
    plain.close()


def test_goal_option_and_set_goal(envs):
    env = envs['push']
    goal = {'state': np.array([0.5, 0.1, PLANAR_HAND_Z, 0.6, -0.1], np.float32)}
    obs, _ = env.reset(seed=0, options={'goal': goal})
    np.testing.assert_allclose(obs['desired_goal_state'], goal['state'])
    assert obs['desired_goal_image'].std() > 10     # image rendered from the state
    env.goal = env.sample_goal()
    with pytest.raises(ValueError, match='shape'):
        env.set_goal(np.zeros(3))


@pytest.mark.parametrize('task, offset, succeeds', [
    ('reach', [0.04, 0, 0], True), ('reach', [0.0, 0.06, 0], False),
    ('push', [0, 0, 0, 0.05, 0], True), ('push', [0, 0, 0, 0.0, -0.07], False),
    ('door', [0, 0, 0, 0.09], True), ('door', [0, 0, 0, 0.11], False),
])
def test_reward_is_negative_task_distance_and_success_has_thresholds(envs, task, offset, succeeds):
    env = envs[task]
    env.reset(seed=0)
    state = env.scene.state()
    env.set_goal(state + np.array(offset))
    _, reward, _, _, info = env.step(np.zeros(ACTION_DIMS[task]))
    distance = {'reach': info['hand_distance'], 'push': info.get('puck_distance'),
                'door': info.get('door_angle_error')}[task]
    assert distance == pytest.approx(np.linalg.norm(offset), abs=2e-3)
    assert reward == pytest.approx(-distance)
    assert info['success'] is succeeds


@pytest.mark.parametrize('task', TASKS)
def test_same_seed_same_episode_different_seed_different_goal(task):
    first, second = make_env(task=task), make_env(task=task)
    obs_a, _ = first.reset(seed=11)
    obs_b, _ = second.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(5):
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
        action = rng.uniform(-1, 1, ACTION_DIMS[task])
        obs_a, reward_a, *_ = first.step(action)
        obs_b, reward_b, *_ = second.step(action)
        assert reward_a == reward_b
    other, _ = second.reset(seed=12)
    assert not np.array_equal(other['desired_goal_state'], first.reset(seed=11)[0]['desired_goal_state'])
    first.close()
    second.close()


def test_config_seed_makes_the_first_reset_reproducible():
    first, second = make_env(task='reach', seed=7), make_env(task='reach', seed=7)
    np.testing.assert_array_equal(first.reset()[0]['desired_goal_state'],
                                  second.reset()[0]['desired_goal_state'])
    first.close()
    second.close()


def test_episode_is_truncated_at_the_horizon():
    env = make_env(task='door', horizon=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(3))[3] for _ in range(3)]
    assert flags == [False, False, True]
    env.close()


def test_actions_are_scaled_and_clipped(envs):
    env = envs['reach']
    env.reset(seed=0)
    start = env.scene.ee_pos()
    env.step(np.array([5.0, 0.0]))                  # clipped to 1 -> one action_scale
    assert env.scene.ee_pos()[0] - start[0] == pytest.approx(0.02, rel=0.1)
    with pytest.raises(ValueError, match='task'):
        type(env)(task='push')


def test_rgb_array_render_mode_gives_the_overview():
    env = make_env(task='push')
    assert env.render() is None
    env.close()
    env = gymnasium.make('rig/Push-v0', render_mode='rgb_array')
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (256, 256, 3) and frame.std() > 10
    env.close()


@pytest.mark.parametrize('task', TASKS)
def test_envs_declare_the_learner_protocols_optional_attributes(envs, task):
    """rig_learn.protocol: action_scale, success_threshold, goal_map_axes (goal y across, flipped, x
    up: puck for push) pass check_env; render_observations False gives black observation images while
    goal images are still rendered and the physics is the same."""
    from rig_learn.protocol import check_env, map_axes  # deferred: rig_learn imports torch
    env = envs[task]
    check_env(env, env.config.image_size)
    assert env.action_scale == env.config.action_scale
    assert env.success_threshold == {'reach': HAND_SUCCESS_DISTANCE, 'push': PUCK_SUCCESS_DISTANCE,
                                     'door': DOOR_SUCCESS_ANGLE}[task]
    (across, _, flipped), (up, _, up_flipped) = map_axes(env.goal_map_axes, len(env.scene.state_names))
    names = env.scene.state_names
    part = 'puck' if task == 'push' else 'hand'
    assert (names[across], names[up], flipped, up_flipped) == (f'{part}_y', f'{part}_x', True, False)
    action = np.full(ACTION_DIMS[task], 0.5, np.float32)
    rendered, _ = env.reset(seed=0)
    rendered = env.step(action)[0]
    env.render_observations = False
    try:
        env.reset(seed=0)
        spared = env.step(action)[0]
    finally:
        env.render_observations = True
    assert rendered['image'].any() and not spared['image'].any() and spared['image'].shape == rendered['image'].shape
    np.testing.assert_array_equal(spared['desired_goal_image'], rendered['desired_goal_image'])
    np.testing.assert_array_equal(spared['state'], rendered['state'])
