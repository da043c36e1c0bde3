"""C12: the criterion gives each verdict on payloads made for it."""


from georecall.experiments.claims import multihop as cc


def _c12(direct, cot):
    smallest = []
    for cond, sizes in (("direct-frozen", direct), ("cot-frozen", cot)):
        for k, p in enumerate(sizes, start=1):
            smallest.append({"k": k, "condition": cond, "found": p is not None, "trainable_params": p})
    return cc.decide_c12({"multihop": {"smallest": smallest}})


def test_c12_gives_each_verdict():
    assert _c12([900, 1500, 5700], [900, 1000, 1100]).verdict == "reproduced"
    assert _c12([900, 1500, None], [900, 1000, 1100]).verdict == "reproduced"  # k = 3 needs more than the grid
    assert _c12([900, 1500, 5700], [900, 2300, 2400]).verdict == "partly"  # CoT grows 2.7x
    assert _c12([900, 1500, 5700], [900, None, 1100]).verdict == "partly"  # CoT failed within the grid at k = 2
    assert _c12([900, 900, 5700], [900, 1000, 1100]).verdict == "not reproduced"  # direct flat from k = 1 to 2
    assert _c12([None, 1500, 5700], [900, 1000, 1100]).verdict == "not reproduced"
    assert _c12([900], [900]).verdict == "not reproduced"


def test_c12_reports_the_first_success_beside_the_rule():
    smallest = [{"k": k, "condition": c, "found": True, "trainable_params": p,
                 "rule": {"first_success_trainable_params": f}}
                for c, rows in (("direct-frozen", [(1, 2304, 904), (2, 4016, 1512)]),
                                ("cot-frozen", [(1, 2304, 904), (2, 2336, 2336)]))
                for k, p, f in rows]
    d = cc.decide_c12({"multihop": {"smallest": smallest}})
    assert d.numbers["cot_frozen_params"] == [2304, 2336]
    assert d.numbers["cot_frozen_params_first_success"] == [904, 2336]
    assert d.numbers["direct_frozen_params_first_success"] == [904, 1512]
