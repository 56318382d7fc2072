"""Cluster-balanced sampling: the rare cluster's share follows size**alpha; deterministic,
resumable mid-stream, disjoint under DDP."""

import itertools

import numpy as np
import pytest
from wallwm_train.data.event import Event
from wallwm_train.data.sampler import ClusterBalancedSampler
from wallwm_train.data.sampler import caption_vectors
from wallwm_train.data.sampler import cluster_probabilities


class ImbalancedDataset:
    """100 'pick' events for every 'push the cube sideways' event, with different motions."""

    def __init__(self, common=200, rare=2):
        self.events, self._actions = [], {}
        for i in range(common + rare):
            rare_one = i >= common
            actions = np.zeros((20, 3), np.float32)
            actions[:, 1 if rare_one else 0] = np.linspace(0, 1, 20)
            self._actions[i] = actions
            caption = 'push the cube sideways' if rare_one else 'pick up the cube'
            self.events.append((i, Event(0, 20, caption)))

    def episode_actions(self, i):
        return self._actions[i]


def _rare_share(sampler, n=20000):
    draws = list(itertools.islice(iter(sampler), n))
    return np.mean(np.array(draws) >= 200)


@pytest.mark.parametrize('embedding', ['minilm', 'tfidf'])
def test_rare_cluster_share_rises_as_alpha_falls_as_computed(embedding):
    ds = ImbalancedDataset()
    labels = ClusterBalancedSampler(ds, num_clusters=2, embedding=embedding).labels
    shares = []
    for alpha in (1.0, 0.5, 0.0):
        sampler = ClusterBalancedSampler(ds, alpha=alpha, seed=0, labels=labels)
        assert sorted(sampler.sizes) == [2, 200]  # k-means separates the two behaviours
        expected = cluster_probabilities(np.array([2, 200]), alpha)[0]
        share = _rare_share(sampler)
        assert share == pytest.approx(expected, abs=0.01 + 0.1 * expected)
        shares.append(share)
    assert shares[0] < shares[1] < shares[2]
    assert shares[2] == pytest.approx(0.5, abs=0.02)


def test_deterministic_and_resumable_mid_stream():
    ds = ImbalancedDataset(50, 5)
    a = ClusterBalancedSampler(
        ds, alpha=0.3, num_clusters=2, seed=7, rank=1, world_size=2, embedding='tfidf'
    )
    reference = list(itertools.islice(iter(a), 30))
    b = ClusterBalancedSampler(
        ds, alpha=0.3, num_clusters=2, seed=7, rank=1, world_size=2, embedding='tfidf'
    )
    it = iter(b)
    first = list(itertools.islice(it, 13))
    state = b.state_dict()
    c = ClusterBalancedSampler(
        ds, alpha=0.3, num_clusters=2, seed=7, rank=1, world_size=2, embedding='tfidf'
    )
    c.load_state_dict(state)
    assert first + list(itertools.islice(iter(c), 17)) == reference


def test_ranks_take_disjoint_slices_of_one_stream():
    ds = ImbalancedDataset(50, 5)
    single = ClusterBalancedSampler(ds, alpha=0.5, num_clusters=2, seed=3, embedding='tfidf')
    stream = list(itertools.islice(iter(single), 40))
    ranks = [
        list(
            itertools.islice(
                iter(
                    ClusterBalancedSampler(
                        ds,
                        alpha=0.5,
                        num_clusters=2,
                        seed=3,
                        rank=r,
                        world_size=2,
                        embedding='tfidf',
                    )
                ),
                20,
            )
        )
        for r in (0, 1)
    ]
    assert ranks[0] == stream[0::2] and ranks[1] == stream[1::2]


def test_minilm_vectors_follow_the_captions_in_order():
    """Captions are embedded once each (datasets repeat them) and mapped back in order."""
    captions = ['pick up the cube', 'push the cube sideways', 'pick up the cube', 'open gripper']
    vectors = caption_vectors(captions, 'minilm')
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert vectors[0] @ vectors[1] < 0.99 and vectors[1] @ vectors[3] < 0.99


def test_unknown_caption_embedding_is_a_clear_error():
    with pytest.raises(ValueError, match='caption embedding'):
        caption_vectors(['a'], 'word2vec')
