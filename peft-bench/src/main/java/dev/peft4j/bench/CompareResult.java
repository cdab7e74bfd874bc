package dev.peft4j.bench;

/**
 * One method's row of a {@link Compare} run, every number measured in that method's own training run.
 *
 * @param method           the method's name in {@link CompareMethods}
 * @param description      what it trains
 * @param trainableParams  trainable scalars (adapter and classification head), counted from the arrays
 * @param allParams        all parameters of the base model (with its head), before the method is applied
 * @param trainablePercent {@code 100 · trainable / all}
 * @param learningRate     the peak learning rate used
 * @param steps            optimizer steps
 * @param trainSeconds     wall time of the training loop
 * @param evalSeconds      wall time of the validation pass
 * @param tokensPerSecond  real (non-padding) training tokens per second of training
 * @param peakRssBytes     the process's peak resident memory during the run (set-up, training, evaluation); -1 if
 *                         unknown
 * @param firstLoss        training loss of the first step
 * @param lastLoss         mean training loss of the last tenth of the steps
 * @param accuracy         validation accuracy
 * @param f1               validation F1 (class 1; macro over classes for more than two)
 * @param rocAuc           validation ROC AUC
 * @param adapterDir       where the trained adapter was saved, relative to the output directory
 */
public record CompareResult(String method, String description, long trainableParams, long allParams,
    double trainablePercent, double learningRate, int steps, double trainSeconds, double evalSeconds,
    double tokensPerSecond, long peakRssBytes, double firstLoss, double lastLoss, double accuracy, double f1,
    double rocAuc, String adapterDir) {}
