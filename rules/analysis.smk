checkpoint select_trials:
    input:
        curves=selection_input_paths(),
        code=ANALYSIS_CODE,
    output:
        json="results/selection.json",
    log:
        "logs/select_trials.log",
    conda:
        "../envs/analysis.yaml"
    params:
        threshold=headline_threshold(config),
        reference=config["analysis"]["reference_model"],
        protocol=for_selection(PROTOCOL),
    script:
        "../workflow/scripts/select_trials.py"


rule thresholds:
    input:
        curves=all_curve_paths,
        selection=selection_file,
        code=ANALYSIS_CODE,
    output:
        csv=report(
            "results/thresholds.csv",
            caption="../report/thresholds.rst",
            category="Compute at threshold",
        ),
        parquet="results/thresholds.parquet",
        by_model=report(
            "results/thresholds_by_model.csv",
            caption="../report/thresholds_by_model.rst",
            category="Compute at threshold",
        ),
    log:
        "logs/thresholds.log",
    benchmark:
        "results/benchmarks/thresholds.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        thresholds=config["thresholds"],
        reference=config["analysis"]["reference_model"],
        protocol=PROTOCOL,
        plan=sweep_plan(config),
        # read, not an input: the data may be deleted after training without the curves being redone
        manifest=rules.prepare_data.output.manifest,
    script:
        "../workflow/scripts/thresholds.py"


rule trend:
    input:
        thresholds=rules.thresholds.output.parquet,
        code=ANALYSIS_CODE,
    output:
        json="results/trend.json",
        csv=report("results/trend.csv", caption="../report/trend.rst", category="Trend"),
        figure=report(
            "results/figures/efficiency.png",
            caption="../report/efficiency.rst",
            category="Trend",
        ),
    log:
        "logs/trend.log",
    benchmark:
        "results/benchmarks/trend.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        published=publication_dates(config),
        thresholds=config["thresholds"],
        analysis=config["analysis"],
        plan=sweep_plan(config),
    script:
        "../workflow/scripts/trend.py"


rule threshold_sweep:
    input:
        curves=all_curve_paths,
        thresholds=rules.thresholds.output.parquet,
        code=ANALYSIS_CODE,
    output:
        csv=report(
            "results/threshold_sweep.csv",
            caption="../report/threshold_sweep.rst",
            category="Trend",
        ),
        figure=report(
            "results/figures/threshold_sweep.png",
            caption="../report/threshold_sweep.rst",
            category="Trend",
        ),
    log:
        "logs/threshold_sweep.log",
    benchmark:
        "results/benchmarks/threshold_sweep.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        published=publication_dates(config),
        threshold=headline_threshold(config),
        analysis=config["analysis"],
        plan=sweep_plan(config),
    script:
        "../workflow/scripts/threshold_sweep.py"


rule published_trend:
    input:
        table=published_table(),
        code=ANALYSIS_CODE,
    output:
        json="results/published/trend.json",
        csv=report(
            "results/published/trend.csv",
            caption="../report/published_trend.rst",
            category="Published results",
        ),
        figure=report(
            "results/figures/published.png",
            caption="../report/published.rst",
            category="Published results",
        ),
    log:
        "logs/published_trend.log",
    conda:
        "../envs/analysis.yaml"
    params:
        analysis=config["analysis"],
    script:
        "../workflow/scripts/published_trend.py"


rule compare_with_published:
    input:
        table=published_table(),
        thresholds=rules.thresholds.output.parquet,
        code=ANALYSIS_CODE,
    output:
        figure=report(
            "results/figures/measured_vs_published.png",
            caption="../report/measured_vs_published.rst",
            category="Published results",
        ),
    log:
        "logs/compare_with_published.log",
    conda:
        "../envs/analysis.yaml"
    params:
        published=publication_dates(config),
        threshold=headline_threshold(config),
        dataset=config["dataset"]["name"],
    script:
        "../workflow/scripts/compare_with_published.py"


rule plot_learning_curves:
    input:
        curves=all_curve_paths,
        thresholds=rules.thresholds.output.parquet,
        code=ANALYSIS_CODE,
    output:
        figure=report(
            "results/figures/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
        ),
    log:
        "logs/plot_learning_curves.log",
    benchmark:
        "results/benchmarks/plot_learning_curves.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        threshold=headline_threshold(config),
    script:
        "../workflow/scripts/plot_learning_curves.py"


rule plot_model_curve:
    input:
        curves=model_curve_paths,
        thresholds=rules.thresholds.output.csv,
        code=ANALYSIS_CODE,
    output:
        figure=report(
            "results/figures/curves/{model}.png",
            caption="../report/model_curve.rst",
            category="Learning curves",
            subcategory="{model}",
        ),
    log:
        "logs/plot_model_curve/{model}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        thresholds=config["thresholds"],
    script:
        "../workflow/scripts/plot_model_curve.py"


rule flop_table:
    input:
        counts=flop_count_paths(),
        code=ANALYSIS_CODE,
    output:
        csv=report(
            "results/flop_counts.csv",
            caption="../report/flop_counts.rst",
            category="Compute convention",
        ),
    log:
        "logs/flop_table.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/flop_table.py"
