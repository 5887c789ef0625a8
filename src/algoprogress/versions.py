"""The versions of the code that determines a result, beside its settings.

What a training job or a FLOP count computes depends on its settings (the rules' params) and on the code that
computes it. The settings are params; the code is declared here, by version, and is a param too (rules/train.smk,
``algorithm``; ``convention`` of count_flops), so that Snakemake reruns exactly the jobs whose code changed what they
compute, and a dry run names them with the old and the new version ("Params have changed since last execution ...
before: 'training v1' now: 'training v2'"). File modification times decide nothing: the shipped profiles leave
Snakemake's ``code`` trigger off (a checkout, a copy or an upgrade that leaves results alone retrains nothing).

A release that changes a curve (the training loop, data loading, the seeded augmentations, the optimiser and schedule,
evaluation, the FLOP bookkeeping of a step) bumps ``TRAINING``; one that changes a FLOP count (``algoprogress.flops``'
convention or how it counts) bumps ``FLOP_COUNT``, which reruns the counts and, their files then changed, the training
that reads them. The in-repo networks (``algoprogress.nets``) are versioned by the digest of their file, as a user's
``file:`` model is (``config.network_spec``). Each curve's and FLOP file's provenance records its version, and a
checkpoint of another training version is not resumed (``training.TrainingJob.fingerprint``).
"""

TRAINING = "training v1"
FLOP_COUNT = "flop count v1"
