"""Seeded permutations and in-memory batching."""

from __future__ import annotations

import torch

from replearn.train import epoch_generator, epoch_permutation, iter_batches, num_batches


def test_permutation_depends_only_on_seed_and_epoch():
    a = epoch_permutation(50, seed=1, epoch=3)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(a, epoch_permutation(50, seed=1, epoch=3))
    assert sorted(a.tolist()) == list(range(50))
    assert not torch.equal(a, epoch_permutation(50, seed=1, epoch=4))
    assert not torch.equal(a, epoch_permutation(50, seed=2, epoch=3))


def test_streams_are_independent():
    shuffle = torch.rand(5, generator=epoch_generator(0, 0, stream=0))
    augment = torch.rand(5, generator=epoch_generator(0, 0, stream=1))
    assert not torch.equal(shuffle, augment)


def test_batches_cover_every_sample_once_in_the_given_order():
    x = torch.arange(10.0).reshape(10, 1)
    y = torch.arange(10)
    order = epoch_permutation(10, 0, 0)
    batches = list(iter_batches(x, y, 4, order))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[1] for b in batches])
    assert torch.equal(seen, order)
    assert all(torch.equal(bx[:, 0].long(), by) for bx, by in batches)


def test_unshuffled_batches_are_views_and_single_last_sample_can_be_dropped():
    x = torch.zeros(9, 2)
    first, _ = next(iter_batches(x, None, 4))
    assert first.data_ptr() == x.data_ptr()
    assert num_batches(9, 4) == 3 and num_batches(9, 4, drop_single=True) == 2
    assert num_batches(1, 4, drop_single=True) == 1  # never drop the only batch
    assert [len(b) for b, _ in iter_batches(x, None, 4, drop_single=True)] == [4, 4]
