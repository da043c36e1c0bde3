"""C11: the criterion gives each verdict on payloads made for it."""


from georecall.experiments.claims import frozen_control as cc


def _c11(ci, ratio, n_points=5):
    comparison = [{"NK": 64, "ratio_non_embedding": 1.0}, {"NK": 512, "ratio_non_embedding": ratio}]
    return cc.decide_c11({"frozen_control": {"width_exponent": {"slope": sum(ci) / 2 if ci else None, "ci95": ci,
                                                                 "n_points": n_points},
                                             "width_slope": {"slope": 0.3, "ci95": [0.2, 0.4]},
                                             "comparison": comparison}})


def test_c11_gives_each_verdict():
    assert _c11([0.8, 1.1], 5.0).verdict == "reproduced"
    assert _c11([0.2, 0.9], 5.0).verdict == "partly"  # grows, but the interval does not clear 0.5
    assert _c11([0.8, 1.1], 1.5).verdict == "partly"  # grows fast, but frozen is not far costlier
    assert _c11([-0.1, 0.4], 5.0).verdict == "not reproduced"
    assert _c11(None, 5.0, n_points=1).verdict == "not reproduced"
    d = _c11([0.8, 1.1], 5.0)
    assert d.numbers["ratio_at_largest_nk"] == 5.0 and d.numbers["largest_nk"] == 512  # the largest N·K decides


