package dev.peft4j.spark;

import java.util.function.Supplier;
import org.apache.spark.SparkException;

/**
 * Spark reports a task's exception inside a {@link SparkException} whose message starts with the scheduler's account
 * ("Job aborted due to stage failure: Task 1 in stage 3.0 failed 4 times, most recent failure: Lost task …") and
 * carries the executor's stack trace. The driver's callers get the executor's own message back instead.
 */
final class SparkFailures {

  private static final String MARKER = "most recent failure: ";

  private SparkFailures() {}

  /**
   * Runs a Spark action, giving back an executor's failure as {@link #unwrap} does. (Spark's Scala code throws the
   * checked {@link SparkException} undeclared.)
   */
  static <T> T run(Supplier<T> action) {
    try {
      return action.get();
    } catch (Exception e) {
      throw unwrap(e);
    }
  }

  /**
   * An {@link IllegalStateException} whose message is the executor's (the root cause's message, or the first line
   * Spark quoted of it), with {@code failure} as its cause; {@code failure} itself when no executor message is found.
   */
  static RuntimeException unwrap(Exception failure) {
    Throwable root = failure;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String message = null;
    if (root != failure && root.getMessage() != null) {
      message = root.getMessage();
    } else if (failure.getMessage() != null && failure.getMessage().contains(MARKER)) {
      String quoted = failure.getMessage().substring(failure.getMessage().indexOf(MARKER) + MARKER.length());
      int end = quoted.indexOf("\n");
      quoted = end < 0 ? quoted : quoted.substring(0, end);
      // "Lost task 0.0 in stage 0.0 (TID 0) (host executor driver): java.lang.IllegalStateException: message"
      int exception = quoted.indexOf("): ");
      quoted = exception < 0 ? quoted : quoted.substring(exception + 3);
      int colon = quoted.indexOf(": ");
      message = colon < 0 ? quoted : quoted.substring(colon + 2);
    }
    if (message != null) {
      return new IllegalStateException(message, failure);
    }
    return failure instanceof RuntimeException r ? r : new IllegalStateException(failure.getMessage(), failure);
  }
}
