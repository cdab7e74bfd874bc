package dev.peft4j.spark;

import org.apache.spark.sql.SparkSession;

/** A Spark session in local mode for the tests: two task threads, up to two attempts per task, no UI. */
final class LocalSpark {

  private LocalSpark() {}

  /** {@code local[2,2]}: two cores, a task may fail once and be retried (the retry tests rely on it). */
  static SparkSession start(String name) {
    return SparkSession.builder().master("local[2,2]").appName(name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate();
  }
}
