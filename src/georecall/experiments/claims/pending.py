"""Claims of the paper that no georecall experiment tests yet: reported ``not tested``, with what will test them."""

from __future__ import annotations

from georecall.experiments.claims import Claim

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="C13", statement="Pretrained language models hold a subject's attributes linearly and additively at some "
                            "layer.",
        paper_ref="§6 (preliminary experiments on pretrained LMs)",
        criterion="At some layer, probes cross-validated over subjects decode each relation's attribute above a "
                  "shuffled-label control, and an additive fit of the subject representation from per-relation "
                  "components beats its control on held-out subjects.",
        tested_by="the `real_lm` experiment on SmolLM2 (optional extra georecall[lm]; planned)"),
)
