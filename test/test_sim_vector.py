"""The multi-process batch must reproduce single environments exactly."""
import numpy as np
import pytest

from rig_sim import make_env, make_vector_env


@pytest.fixture(scope='module')
def vector_env():
    env = make_vector_env(task='push', num_envs=2)
    yield env
    env.close()


def test_workers_match_single_envs_with_the_same_seeds(vector_env):
    seed = 21
    batch_obs, _ = vector_env.reset(seed=seed)
    singles = [make_env(task='push') for _ in range(2)]
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    rng = np.random.default_rng(0)
    for _ in range(4):
        for i in range(2):
            for key, value in single_obs[i].items():
                np.testing.assert_array_equal(batch_obs[key][i], value, err_msg=key)
        actions = rng.uniform(-1, 1, (2, 2))
        batch_obs, batch_rewards, _, _, batch_info = vector_env.step(actions)
        single_steps = [env.step(a) for env, a in zip(singles, actions)]
        single_obs = [s[0] for s in single_steps]
        np.testing.assert_array_equal(batch_rewards, [s[1] for s in single_steps])
        np.testing.assert_array_equal(batch_info['puck_distance'],
                                      [s[4]['puck_distance'] for s in single_steps])
    goals = vector_env.sample_goals()
    for i, env in enumerate(singles):
        expected = env.sample_goal()
        np.testing.assert_array_equal(goals[i]['state'], expected['state'])
        np.testing.assert_array_equal(goals[i]['image'], expected['image'])
        env.close()
    assert not np.array_equal(goals[0]['state'], goals[1]['state'])


def test_set_goals_reaches_every_worker(vector_env):
    vector_env.reset(seed=0)
    goals = vector_env.sample_goals()[::-1]
    vector_env.set_goals(goals)
    obs, *_ = vector_env.step(np.zeros((2, 2)))
    for i in range(2):
        np.testing.assert_array_equal(obs['desired_goal_state'][i], goals[i]['state'])
        np.testing.assert_array_equal(obs['desired_goal_image'][i], goals[i]['image'])
    with pytest.raises(ValueError, match='goals'):
        vector_env.set_goals(goals[:1])


@pytest.mark.parametrize('num_envs', [0, -1, 1.5, True])
def test_bad_worker_count_raises(num_envs):
    with pytest.raises(ValueError, match='num_envs'):
        make_vector_env(num_envs=num_envs)


def test_episodes_autoreset_on_the_step_after_truncation():
    env = make_vector_env(task='reach', num_envs=2, horizon=2)
    first, _ = env.reset(seed=4)
    truncations = [env.step(np.ones((2, 2)))[3] for _ in range(2)]
    assert [t.tolist() for t in truncations] == [[False, False], [True, True]]
    obs, rewards, _, truncated, _ = env.step(np.ones((2, 2)))   # this step resets instead
    np.testing.assert_array_equal(rewards, [0.0, 0.0])
    assert not truncated.any()
    np.testing.assert_array_equal(obs['state'], first['state'])   # back at the home pose
    env.close()


def test_worker_errors_raise_in_the_parent(vector_env):
    with pytest.raises(RuntimeError, match='worker 0 failed'):
        vector_env.call('set_goal', np.zeros(2))
    vector_env.reset(seed=0)   # the workers survive a failed call
