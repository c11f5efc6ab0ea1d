/**
 * Client money on the gateway: balances, deposits, and the reserve → settle/release cycle that
 * brackets every request.
 *
 * <ul>
 *   <li>{@link org.cocoonjvm.billing.accounts.AccountBook} – the contract, free of storage
 *       assumptions; {@link org.cocoonjvm.billing.ledger.JdbcAccountBook} is the durable one.</li>
 *   <li>{@link org.cocoonjvm.billing.accounts.InMemoryAccountBook} – lock-free, nothing survives a
 *       restart: tests and throwaway demos.</li>
 *   <li>Values: {@link org.cocoonjvm.billing.accounts.Account},
 *       {@link org.cocoonjvm.billing.accounts.AccountState},
 *       {@link org.cocoonjvm.billing.accounts.Reservation},
 *       {@link org.cocoonjvm.billing.accounts.Settlement},
 *       {@link org.cocoonjvm.billing.accounts.RequestRecord}; deposit comments:
 *       {@link org.cocoonjvm.billing.accounts.DepositComments}.</li>
 *   <li>Failures: the sealed {@link org.cocoonjvm.billing.accounts.AccountException}, each with a
 *       stable {@code code()}.</li>
 * </ul>
 */
package org.cocoonjvm.billing.accounts;
