/**
 * Client money on the gateway: balances, deposits, and the reserve → settle/release cycle that
 * brackets every request.
 *
 * <ul>
 *   <li>{@link org.cocoonjvm.billing.accounts.AccountBook} – the contract, free of storage
 *       assumptions: a durable ledger will implement it too.</li>
 *   <li>{@link org.cocoonjvm.billing.accounts.InMemoryAccountBook} – lock-free, for the request path.</li>
 *   <li>Values: {@link org.cocoonjvm.billing.accounts.Account},
 *       {@link org.cocoonjvm.billing.accounts.AccountState},
 *       {@link org.cocoonjvm.billing.accounts.Reservation},
 *       {@link org.cocoonjvm.billing.accounts.Settlement}.</li>
 *   <li>Failures: the sealed {@link org.cocoonjvm.billing.accounts.AccountException}, each with a
 *       stable {@code code()}.</li>
 * </ul>
 */
package org.cocoonjvm.billing.accounts;
