// The Kotlin bindings' smoke test, run by bindings/tests/kotlin.rs against
// the testbed's worlds: arguments are the honest world's relay, DNS, CA
// file, trust anchor and authority keys, then the same five of the hostile
// world (a relay substituting keys). Exits non-zero on the first failure.
package mimi.discovery.smoke

import java.io.File
import kotlinx.coroutines.runBlocking
import mimi.discovery.Discoverer
import mimi.discovery.DiscovererOptions
import mimi.discovery.DiscoveryException
import mimi.discovery.Dnssec
import mimi.discovery.ErrorCode
import mimi.discovery.LookupResult
import mimi.discovery.ProviderOutcome
import mimi.discovery.Verification

/// The options for the world whose five arguments start at `at`.
fun options(args: Array<String>, at: Int) = DiscovererOptions(
    relay = args[at],
    dns = args[at + 1],
    caCertificatesPem = File(args[at + 2]).readText(),
    trustAnchorPath = args[at + 3],
    authorityKeys = File(args[at + 4]).readText()
)

fun main(args: Array<String>) = runBlocking {
    val discoverer = Discoverer(options(args, 0))

    val found = discoverer.discover("bob.example.com")
    check(found.dnssec == Dnssec.SECURE) { "dnssec: ${found.dnssec}" }
    val outcome = found.providers[0].outcome
    check(outcome is ProviderOutcome.Found) { "bob: $outcome" }
    check(outcome.accounts == listOf("mimi://alpha.example/u/bob")) { "bob: ${outcome.accounts}" }
    check(outcome.verification[0].verification == Verification.VERIFIED) { "bob: not verified" }

    try {
        discoverer.discover("not an identifier")
        error("an invalid identifier was looked up")
    } catch (e: DiscoveryException.InvalidIdentifier) {
        check(e.message!!.contains("not a valid identifier")) { "sentence: ${e.message}" }
    }
    try {
        discoverer.discover("mallory.example.com")
        error("a forged DNS answer was used")
    } catch (e: DiscoveryException.DnsBogus) {
    }

    val batch = discoverer.discoverMany(listOf("carol.example.com", "???", "bob.example.com"), null)
    val order = batch.map {
        when (it) {
            is LookupResult.Discovered -> it.discovery.identifier
            is LookupResult.Failed -> it.code.name
        }
    }
    check(order == listOf("carol.example.com", "INVALID_IDENTIFIER", "bob.example.com")) { "batch: $order" }
    discoverer.shutdown()

    val hostile = Discoverer(options(args, 5))
    for (provider in hostile.discover("alice.example.com").providers) {
        val failed = provider.outcome
        check(failed is ProviderOutcome.Failed && failed.code == ErrorCode.KEY_INCONSISTENT) {
            "${provider.host} through a relay substituting keys: $failed"
        }
    }
    hostile.shutdown()
    println("kotlin smoke test: ok")
}
