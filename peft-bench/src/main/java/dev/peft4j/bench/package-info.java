/**
 * The runnable demo ({@link dev.peft4j.bench.Demo}, the README's main job), the method comparison
 * ({@link dev.peft4j.bench.Compare}: {@link dev.peft4j.bench.CompareMethods} is its table of methods,
 * {@link dev.peft4j.bench.TextClassificationData} reads CSV / JSONL data, {@link dev.peft4j.bench.Metrics} scores
 * it, {@link dev.peft4j.bench.CompareReport} and {@link dev.peft4j.bench.CompareChart} write the results) and the JMH
 * benchmarks ({@link dev.peft4j.bench.MlpStepBenchmark}).
 */
package dev.peft4j.bench;
