"""Checkpoints: round trip to a runnable policy, mismatch and corruption rejected, atomic writes."""
import json

import numpy as np
import pytest
import torch

from rig_base.config import ConfigError
from rig_learn import CheckpointError, CheckpointMismatch, RIGAgent, load_checkpoint, make_task_env
from rig_learn.testing import tiny_config


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    env = make_task_env('toy_reach', seed=0)
    agent = RIGAgent.from_config(tiny_config(), env)
    agent.learn(80)
    path = tmp_path_factory.mktemp('ck') / 'checkpoint'
    agent.save(path)
    return agent, env, path


def _probe(env, n=5):
    rng = np.random.default_rng(3)
    obs = [env.sample_goal(rng)['image'] for _ in range(n)]
    goals = [env.sample_goal(rng)['image'] for _ in range(n)]
    return obs, goals


def test_round_trip_gives_same_actions(trained):
    agent, env, path = trained
    loaded = RIGAgent.load(path)
    obs, goals = _probe(env)
    for o, g in zip(obs, goals):
        a = agent.act(o, g)
        assert a.shape == (2,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
        np.testing.assert_array_equal(a, loaded.act(o, g))
    np.testing.assert_array_equal(agent.encode(np.stack(obs))[0], loaded.encode(np.stack(obs))[0])
    assert loaded.counters['env_steps'] == 80 and loaded.counters['grad_steps'] == agent.counters['grad_steps']
    # the loaded policy runs an evaluation episode
    res = loaded.evaluate(make_task_env('toy_reach', seed=1), n_goals=1)
    assert np.isfinite(res.hand_distance).all()


def test_manifest_records_spec(trained):
    _, _, path = trained
    m = json.loads((path / 'manifest.json').read_text())
    assert m['format_version'] == 1
    assert m['spec']['image_size'] == 48 and m['spec']['latent_dim'] == 4 and m['spec']['action_dim'] == 2
    assert m['spec']['task'] == 'toy_reach' and m['spec']['action_low'] == [-1.0, -1.0]
    assert m['config']['vae']['latent_dim'] == 4 and m['counters']['env_steps'] == 80
    assert set(m['files']) == {'policy.pt', 'vae.pt'}


@pytest.mark.parametrize('expected,match', [({'image_size': 84}, 'image_size'), ({'latent_dim': 16}, 'latent_dim'),
                                             ({'action_dim': 3}, 'action_dim'), ({'task': 'push'}, 'task')])
def test_mismatch_rejected(trained, expected, match):
    _, _, path = trained
    with pytest.raises(CheckpointMismatch, match=match):
        load_checkpoint(path, expected=expected)
    with pytest.raises(CheckpointMismatch, match=match):
        RIGAgent.load(path, expected=expected)
    load_checkpoint(path, expected={'image_size': 48, 'latent_dim': 4, 'action_dim': 2, 'task': 'toy_reach'})


def test_mismatch_against_env_rejected(trained):
    _, _, path = trained
    from rig_learn import ToyReachEnv
    with pytest.raises((CheckpointMismatch, ValueError), match='image'):
        RIGAgent.load(path, env=ToyReachEnv(image_size=84))


def test_corrupt_and_missing_rejected(trained, tmp_path):
    import shutil
    _, _, path = trained
    bad = tmp_path / 'bad'
    shutil.copytree(path, bad)
    data = bytearray((bad / 'policy.pt').read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / 'policy.pt').write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='corrupt'):
        RIGAgent.load(bad)
    shutil.copy(path / 'policy.pt', bad / 'policy.pt')
    RIGAgent.load(bad)                                   # repaired -> loads again
    (bad / 'vae.pt').unlink()
    with pytest.raises(CheckpointError, match='vae.pt'):
        load_checkpoint(bad)
    (bad / 'manifest.json').write_text('{"format_version": 1, "spec": ')
    with pytest.raises(CheckpointError, match='corrupt'):
        load_checkpoint(bad)
    (bad / 'manifest.json').unlink()
    with pytest.raises(CheckpointError, match='manifest'):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match='does not exist'):
        load_checkpoint(tmp_path / 'nothing')


def test_save_is_atomic_and_overwrites(trained, tmp_path, monkeypatch):
    agent, _, _ = trained
    path = tmp_path / 'ck'
    agent.save(path)
    first = (path / 'manifest.json').read_text()
    # a failure while writing leaves the previous checkpoint intact and no temp dirs behind
    import rig_learn.checkpoint as ck

    def boom(obj):
        raise OSError('disk full')
    monkeypatch.setattr(ck, '_to_bytes', boom)
    with pytest.raises(OSError):
        agent.save(path)
    monkeypatch.undo()
    assert (path / 'manifest.json').read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ck']
    agent.counters['env_steps'] += 1
    agent.save(path)
    assert json.loads((path / 'manifest.json').read_text())['counters']['env_steps'] == 81
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ck']
    agent.counters['env_steps'] -= 1


@pytest.mark.parametrize('prior', ['fitted', 'data'])
def test_goal_prior_travels_in_the_checkpoint(tmp_path, prior):
    torch.set_num_threads(1)
    agent = RIGAgent.from_config(tiny_config(**{'vae.goal_prior': prior}), make_task_env('toy_reach', seed=0))
    agent.learn(60)
    agent.save(tmp_path / 'ck')
    loaded = RIGAgent.load(tmp_path / 'ck')
    if prior == 'fitted':
        assert not np.allclose(agent.vae.goal_prior_std.numpy(), 1.0)
        assert len(loaded.vae.goal_bank) == 0
    else:
        assert len(agent.vae.goal_bank) > 10
        np.testing.assert_array_equal(loaded.vae.goal_bank.numpy(), agent.vae.goal_bank.numpy())
    np.testing.assert_array_equal(loaded.vae.goal_prior_mean.numpy(), agent.vae.goal_prior_mean.numpy())
    np.testing.assert_array_equal(loaded.vae.goal_prior_std.numpy(), agent.vae.goal_prior_std.numpy())
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(agent.featurizer.sample_prior(rng_a, 3), loaded.featurizer.sample_prior(rng_b, 3))


def test_checkpoint_without_goal_prior_loads_with_the_standard_normal(trained, tmp_path):
    """Checkpoints written before the fitted goal prior still load (imagined goals from N(0, I))."""
    import shutil

    from rig_learn import checkpoint as ckpt
    _, _, path = trained
    old = tmp_path / 'old'
    shutil.copytree(path, old)
    blob = torch.load(old / 'vae.pt', weights_only=False)
    for key in ('goal_prior_mean', 'goal_prior_std', 'goal_bank'):
        del blob['vae'][key]
    torch.save(blob, old / 'vae.pt')
    manifest = json.loads((old / 'manifest.json').read_text())
    manifest['files']['vae.pt'] = ckpt._sha256((old / 'vae.pt').read_bytes())
    (old / 'manifest.json').write_text(json.dumps(manifest))
    loaded = RIGAgent.load(old)
    np.testing.assert_array_equal(loaded.vae.goal_prior_mean.numpy(), 0.0)
    np.testing.assert_array_equal(loaded.vae.goal_prior_std.numpy(), 1.0)
    assert len(loaded.vae.goal_bank) == 0


def test_skewed_goal_bank_favours_images_the_vae_finds_rare(monkeypatch):
    """vae.goal_bank_skew (Skew-Fit): after a refit the bank is resampled from candidate images with
    weight p(x)^alpha (p from vae.log_density), so its latents are those of rarer images on average."""
    import rig_learn.goals
    torch.set_num_threads(1)
    seen = []
    density = rig_learn.goals.log_density
    monkeypatch.setattr(rig_learn.goals, 'log_density',
                        lambda vae, images: seen.append((images, *density(vae, images))) or seen[-1][1:])
    cfg = tiny_config(**{'vae.goal_prior': 'data', 'vae.goal_bank_skew': -1.0,
                         'vae.goal_bank_size': 256, 'vae.skew_candidates': 150})
    agent = RIGAgent.from_config(cfg, make_task_env('toy_reach', seed=0))
    agent.learn(120)   # pretraining, then a refit at step 100
    candidates, logp, latents = seen[-1]
    assert len(candidates) == 150
    assert 'vae/skew_ess' in agent.last_metrics and 1.0 <= agent.last_metrics['vae/skew_ess'] < 150
    bank = agent.vae.goal_bank.numpy()
    row_of = np.argmin(np.linalg.norm(bank[:, None] - latents[None], axis=2), axis=1)
    assert np.allclose(bank, latents[row_of], atol=1e-4)       # every row is a candidate's latent mean
    assert logp[row_of].mean() < logp.mean() - 0.5 * logp.std()   # ... mostly the rare ones


@pytest.mark.parametrize('retired', ['vae.goal_bank_pretrain_fraction', 'vae.skew_vae_training'])
def test_retired_goal_options_are_refused_with_the_reason(retired):
    with pytest.raises(ConfigError, match='retired'):
        tiny_config(**{'vae.goal_prior': 'data', retired: 0.5})


@pytest.mark.parametrize('overrides, message', [
    ({'vae.goal_prior': 'data', 'vae.goal_bank_skew': -1.5}, r'\[-1, 0\]'),
    ({'vae.goal_prior': 'standard', 'vae.goal_bank_skew': -1.0}, 'goal_prior data'),
])
def test_skew_options_that_contradict_each_other_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)
