"""Claims of the paper that no georecall experiment tests yet: reported ``not tested``, with what will test them."""

from __future__ import annotations

from georecall.experiments.claims import Claim

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="C8", statement="Trained subject embeddings are superpositions of their attributes' vectors: each "
                           "attribute f_r(s) is linearly readable from e_s, and e_s ≈ b + Σ_r M_r a(f_r(s)).",
        paper_ref="§5 (mechanism), Theorem 4.1's superposition embeddings",
        criterion="Linear probes cross-validated over held-out subjects decode every relation's attribute well "
                  "above a shuffled-label and an unrelated-bijection control, and the additive fit's held-out R² "
                  "exceeds its random-bijection control, with intervals over seeds.",
        tested_by="the `superposition` experiment (georecall.analysis probes and additive fit; planned)"),
    Claim(
        id="C9", statement="The MLP is a relation-conditioned selector: it extracts the queried relation's "
                           "component by ReLU gating, so ablating one relation's units breaks that relation only.",
        paper_ref="§5 (mechanism), Theorem 4.1's selector MLP",
        criterion="Ablating the units attributed to relation r lowers accuracy on r far more than on the other "
                  "relations (the K×K drop matrix concentrated on its diagonal) and far more than ablating as many "
                  "random units; embedding-space fact edits succeed with small collateral against a same-norm "
                  "random edit.",
        tested_by="the `intervention` experiment (ablations, activation patching, fact edits; planned)"),
    Claim(
        id="C10", statement="The trained MLP transfers zero-shot to entirely new bijections once the subject "
                            "embeddings are rebuilt from the per-relation maps.",
        paper_ref="§5 (freeze-and-swap transfer)",
        criterion="With attention, MLP, LayerNorms and readout frozen, embeddings built from the fitted per-relation "
                  "maps for new bijections score far above chance with no training, and embeddings-only training "
                  "beats the same training on a frozen untrained model.",
        tested_by="the `transfer` experiment (freeze-and-swap; planned)"),
    Claim(
        id="C13", statement="Pretrained language models hold a subject's attributes linearly and additively at some "
                            "layer.",
        paper_ref="§6 (preliminary experiments on pretrained LMs)",
        criterion="At some layer, probes cross-validated over subjects decode each relation's attribute above a "
                  "shuffled-label control, and an additive fit of the subject representation from per-relation "
                  "components beats its control on held-out subjects.",
        tested_by="the `real_lm` experiment on SmolLM2 (optional extra georecall[lm]; planned)"),
)
