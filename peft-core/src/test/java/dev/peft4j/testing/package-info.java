/** Toy graphs and helpers shared by every module's tests through peft-core's test-jar. */
package dev.peft4j.testing;
