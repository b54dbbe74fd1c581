"""MemoryDB behaves like plyvel for every call the stores make (so pure tests mean something)."""

from __future__ import annotations

import plyvel
from hypothesis import given, settings
from hypothesis import strategies as st

from state.store import MemoryDB

small = st.binary(max_size=3)


@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(st.tuples(small, st.one_of(st.none(), small)), max_size=30),
    bounds=st.tuples(st.one_of(st.none(), small), st.one_of(st.none(), small)),
    seeks=st.lists(small, max_size=4),
    prefix=small,
)
def test_same_answers_as_leveldb(tmp_path_factory, writes, bounds, seeks, prefix):
    path = tmp_path_factory.mktemp("db")
    real = plyvel.DB(str(path), create_if_missing=True)
    try:
        fake = MemoryDB()
        for db in (real, fake):
            batch = db.write_batch(sync=False)
            for key, value in writes:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            batch.write()
        for key, _ in writes:
            assert fake.get(key) == real.get(key)
        start, stop = bounds
        with real.iterator(start=start, stop=stop) as it:
            expected = list(it)
        with fake.iterator(start=start, stop=stop) as it:
            assert list(it) == expected
        with real.iterator(prefix=prefix) as it:
            expected = list(it)
        assert list(fake.iterator(prefix=prefix)) == expected
        for target in seeks:
            with (
                real.iterator(start=start, stop=stop) as a,
                fake.iterator(start=start, stop=stop) as b,
            ):
                a.seek(target)
                b.seek(target)
                assert next(b, None) == next(a, None)
    finally:
        real.close()
