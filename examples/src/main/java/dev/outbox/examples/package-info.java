/** Runnable services that show the whole flow: orders, the relay and a payments consumer. */
package dev.outbox.examples;
