from edgekit.data import load_dataset


def test_shuttle_is_the_real_statlog_set():
    t = load_dataset("shuttle")
    assert t.values.shape == (49097, 9)
    assert int(t.labels.sum()) == 3511
    assert t.channels == [f"f{i}" for i in range(1, 10)]
    assert not t.ordered


def test_mitdb_is_a_labelled_time_series():
    t = load_dataset("mitdb")
    assert t.values.shape == (7500, 1) and int(t.labels.sum()) == 352 and t.ordered


def test_daphnet_has_nine_channels_and_no_anomalies():
    t = load_dataset("daphnet")
    assert t.values.shape[1] == 9 and int(t.labels.sum()) == 0 and t.timestamps is not None
