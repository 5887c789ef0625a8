rule count_flops:
    input:
        source=model_source_file,
    output:
        "results/flops/{model}/{resolution}px.json",
    log:
        "logs/count_flops/{model}/{resolution}px.log",
    benchmark:
        "results/benchmarks/count_flops/{model}/{resolution}px.tsv"
    conda:
        "../envs/training.yaml"
    params:
        # the counting code's version (algoprogress.versions): a release that changes a count bumps it
        convention=versions.FLOP_COUNT,
        arch=model_arch,
        source=model_source,
        kwargs=model_kwargs,
        num_classes=NUM_CLASSES,
        resolution=flop_resolution,
    script:
        "../workflow/scripts/count_flops.py"


rule train:
    input:
        # ancient: the repair (workflow/scripts/repair.py) rewrites a damaged data file in place, the
        # same images and split with a new time stamp, which must not retrain finished curves; what the
        # data contain is a param (the dataset settings), which does rerun training
        train=ancient(rules.prepare_data.output.train),
        val=ancient(rules.prepare_data.output.val),
        manifest=ancient(rules.prepare_data.output.manifest),
        flops=trial_flop_paths,
        source=model_source_file,
    output:
        curve="results/curves/{model}/{trial}/seed{seed}.parquet",
    log:
        "logs/train/{model}/{trial}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{model}/{trial}/seed{seed}.tsv"
    priority: training_priority
    conda:
        "../envs/training.yaml"
    threads: training_threads
    resources:
        gpu=training_gpus,
    params:
        # the training code's version (algoprogress.versions): a release that changes a curve bumps it
        algorithm=versions.TRAINING,
        spec=model_spec,
        training=trial_settings,
        data=data_content(config["dataset"]),
        # not an output, so a failed or killed job keeps it and its rerun resumes from it
        checkpoint_file="results/checkpoints/{model}/{trial}/seed{seed}.pt",
    script:
        "../workflow/scripts/train.py"
