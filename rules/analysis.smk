rule thresholds:
    input:
        curves=curve_paths(),
    output:
        csv="results/thresholds.csv",
    log:
        "logs/thresholds.log",
    benchmark:
        "results/benchmarks/thresholds.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        threshold=config["threshold"],
    script:
        "../workflow/scripts/thresholds.py"


rule trend:
    input:
        thresholds=rules.thresholds.output.csv,
    output:
        json="results/trend.json",
        figure="results/figures/efficiency.png",
    log:
        "logs/trend.log",
    benchmark:
        "results/benchmarks/trend.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        published=publication_dates(),
        analysis=config["analysis"],
        threshold=config["threshold"],
    script:
        "../workflow/scripts/trend.py"


rule plot_learning_curves:
    input:
        curves=curve_paths(),
    output:
        figure="results/figures/learning_curves.png",
    log:
        "logs/plot_learning_curves.log",
    benchmark:
        "results/benchmarks/plot_learning_curves.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        threshold=config["threshold"],
    script:
        "../workflow/scripts/plot_learning_curves.py"
