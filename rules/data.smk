rule prepare_data:
    output:
        train="results/data/train.beton",
        val="results/data/val.beton",
        manifest="results/data/manifest.json",
    log:
        "logs/prepare_data.log",
    benchmark:
        "results/benchmarks/prepare_data.tsv"
    conda:
        "../envs/training.yaml"
    threads: config["dataset"]["writer_workers"]
    params:
        dataset=data_content(config["dataset"]),
    script:
        "../workflow/scripts/prepare_data.py"
