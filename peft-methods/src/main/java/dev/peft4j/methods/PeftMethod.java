package dev.peft4j.methods;

import com.google.gson.JsonObject;
import dev.peft4j.AdapterConfig;
import java.util.Set;

/**
 * One PEFT method as peft4j registers it in {@link PeftMethods}: its {@code peft_type}, its config class, how its
 * {@code adapter_config.json} is read, and its closed-form trainable count in {@link ParameterBudget}. Loading
 * ({@link Peft#load}), {@link ParameterBudget#count}, the contract suite and the comparison all read the registry.
 *
 * @param peftType   the {@code peft_type} of its files (Hugging Face PEFT's name, or peft4j's own for methods HF
 *                   does not have)
 * @param configType the config class; every config of this method is an instance of it
 * @param reader     reads an {@code adapter_config.json} of this {@code peft_type}
 * @param budget     the closed-form trainable count of a config on a model shape, without its modules to save
 * @param <C>        the config class
 */
public record PeftMethod<C extends AdapterConfig>(String peftType, Class<C> configType, Reader<C> reader,
    Budget<C> budget) {

  /** Reads a config from Hugging Face's fields; fields the reader does not know go to {@code ignored}. */
  @FunctionalInterface
  public interface Reader<C> {
    /**
     * @throws IllegalArgumentException naming the field, for a value peft4j cannot read
     */
    C fromHf(JsonObject json, Set<String> ignored);
  }

  /** The closed-form trainable count of a config on the shape of a {@link ParameterBudget}. */
  @FunctionalInterface
  public interface Budget<C> {
    /**
     * @throws IllegalArgumentException if the budget cannot express the config (naming what it cannot)
     */
    long count(ParameterBudget budget, C config);
  }

  /** {@code budget} applied to {@code config}, which must be of this method. */
  long count(ParameterBudget b, AdapterConfig config) {
    return budget.count(b, configType.cast(config));
  }
}
