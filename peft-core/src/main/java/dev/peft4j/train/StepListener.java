package dev.peft4j.train;

import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Called by the {@link Trainer} after every optimizer step, for methods that act between steps (AdaLoRA's rank
 * allocation, as Hugging Face PEFT's {@code update_and_allocate} after {@code optimizer.step()}).
 *
 * <p>The trainer calls the listeners given to {@link Trainer.Builder#onStep} and every active adapter of the model
 * that implements this interface.
 */
@FunctionalInterface
public interface StepListener {

  /**
   * @param step      the optimizer step just taken, from 1
   * @param gradients the step's gradients of the trainable set, keyed by variable name: averaged over the
   *                  micro-batches and clipped, as the optimizer used them (the parameters already hold their
   *                  updated values). Valid during this call only: the trainer frees their buffers when the
   *                  listeners return, so a listener that keeps one keeps a {@code dup()}
   */
  void afterStep(int step, Map<String, INDArray> gradients);
}
