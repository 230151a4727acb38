"""The Python bindings against the testbed's world.

bindings/tests/python.rs starts the world (signed DNS, a TLS relay, two
providers' gateways; and a second world whose relay substitutes keys),
generates the bindings from the library it just built, and runs this file
with MIMI_TEST_WORLD naming a JSON file of the worlds' addresses.
"""

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import mimi_discovery as md

with open(os.environ["MIMI_TEST_WORLD"], encoding="utf-8") as f:
    WORLDS = json.load(f)

# Kept here: the README test stands in for md.DiscovererOptions.
DiscovererOptions = md.DiscovererOptions


def options(world="honest", **extra):
    w = WORLDS[world]
    with open(w["ca_file"], encoding="utf-8") as f:
        ca = f.read()
    with open(w["authority_keys"], encoding="utf-8") as f:
        authorities = f.read()
    settings = dict(
        relay=w["relay"],
        dns=w["dns"],
        ca_certificates_pem=ca,
        trust_anchor_path=w["trust_anchor"],
        authority_keys=authorities,
        timeout_ms=10_000,
    )
    settings.update(extra)
    return DiscovererOptions(**settings)


def run(coroutine, timeout=60):
    """Runs one coroutine to its end, bounded in time."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


class Found(unittest.TestCase):
    def test_an_account_is_found_verified_and_says_how(self):
        d = md.Discoverer(options())
        found = run(d.discover("bob.example.com"))
        self.assertEqual(found.identifier, "bob.example.com")
        self.assertEqual(found.kind, "handle")
        self.assertEqual(found.dnssec, md.Dnssec.SECURE)
        provider = found.providers[0]
        self.assertEqual(provider.host, "mimi.alpha.example")
        self.assertEqual(provider.key_check, md.KeyCheck.TUNNEL_SHARED)
        self.assertIsInstance(provider.outcome, md.ProviderOutcome.FOUND)
        self.assertEqual(provider.outcome.accounts, ["mimi://alpha.example/u/bob"])
        verdict = provider.outcome.verification[0]
        self.assertEqual(verdict.verification, md.Verification.VERIFIED)
        self.assertEqual(verdict.authority, "example.com")
        self.assertIsNotNone(verdict.expires_at)

    def test_not_found_is_an_outcome_not_an_error(self):
        d = md.Discoverer(options())
        found = run(d.discover("carol.example.com"))
        self.assertIsInstance(found.providers[0].outcome, md.ProviderOutcome.NOT_FOUND)


class BadInput(unittest.TestCase):
    def test_an_invalid_identifier_throws_its_typed_error(self):
        d = md.Discoverer(options())
        with self.assertRaises(md.DiscoveryError.InvalidIdentifier) as caught:
            run(d.discover("not an identifier"))
        self.assertIn("not a valid identifier", str(caught.exception))
        # Every error is also the base class, so one except clause catches all.
        self.assertIsInstance(caught.exception, md.DiscoveryError)

    def test_bad_options_are_refused_before_anything_is_sent(self):
        for bad, kind in [
            (dict(relay="ftp://relay.example"), md.DiscoveryError.InvalidRelayUrl),
            (dict(relay="http://relay.example"), md.DiscoveryError.InsecureRelay),
            (dict(dns="carrier-pigeon"), md.DiscoveryError.Config),
            (dict(ca_certificates_pem="no certificate here"), md.DiscoveryError.Config),
            (dict(token_batch=0), md.DiscoveryError.Config),
            (dict(authority_keys="v=MIMIA1; n=x"), md.DiscoveryError.Config),
        ]:
            with self.subTest(bad=bad):
                with self.assertRaises(kind):
                    md.Discoverer(options(**bad))


class Credentials(unittest.TestCase):
    def test_a_credential_never_shows_when_options_are_printed(self):
        secret = "eyJhbGciOiJFUzI1NiJ9.not-to-be-logged.sig"
        opts = options(credential=md.Credential(secret))
        self.assertNotIn("not-to-be-logged", str(opts))
        self.assertNotIn("not-to-be-logged", repr(opts))
        md.Discoverer(opts).shutdown()

    def test_a_credential_that_is_not_one_line_is_refused(self):
        with self.assertRaises(md.DiscoveryError.Config):
            md.Credential("two words")


class Tokens(unittest.TestCase):
    """A provider that answers only with lookup tokens (Privacy Pass)."""

    def alpha(self, found):
        return next(p for p in found.providers if p.host == "mimi.alpha.example").outcome

    def test_the_credential_gets_tokens_and_the_lookup_through(self):
        with open(WORLDS["credential_file"], encoding="utf-8") as f:
            credential = md.Credential(f.read())
        d = md.Discoverer(options("tokens", credential=credential))
        outcome = self.alpha(run(d.discover("bob.example.com")))
        self.assertIsInstance(outcome, md.ProviderOutcome.FOUND)
        self.assertEqual(outcome.accounts, ["mimi://alpha.example/u/bob"])

    def test_a_credential_the_relay_does_not_accept_is_said_so(self):
        d = md.Discoverer(options("tokens", credential=md.Credential("not.a.credential")))
        outcome = self.alpha(run(d.discover("bob.example.com")))
        self.assertIsInstance(outcome, md.ProviderOutcome.FAILED)
        self.assertEqual(outcome.code, md.ErrorCode.CREDENTIAL_REJECTED)


class Hostile(unittest.TestCase):
    def test_a_relay_substituting_keys_gets_key_inconsistent(self):
        d = md.Discoverer(options("hostile"))
        found = run(d.discover("alice.example.com"))
        self.assertGreaterEqual(len(found.providers), 2)
        for provider in found.providers:
            self.assertIsInstance(provider.outcome, md.ProviderOutcome.FAILED)
            self.assertEqual(provider.outcome.code, md.ErrorCode.KEY_INCONSISTENT)
            self.assertIn("does not match", provider.outcome.message)

    def test_a_forged_dns_answer_is_refused(self):
        d = md.Discoverer(options())
        with self.assertRaises(md.DiscoveryError.DnsBogus) as caught:
            run(d.discover("mallory.example.com"))
        self.assertIn("nothing was sent", str(caught.exception))


class Batches(unittest.TestCase):
    def test_results_come_in_input_order_with_progress(self):
        d = md.Discoverer(options(concurrency=3))
        inputs = [
            "carol.example.com",
            "alice.example.com",
            "not an identifier",
            "mallory.example.com",
            "erin.example.com",
        ]
        heard = []
        lock = threading.Lock()

        class Listener(md.ProgressListener):
            def on_result(self, index, result, done, total):
                with lock:
                    heard.append((index, done, total))

        results = run(d.discover_many(inputs, Listener()))
        self.assertEqual(len(results), len(inputs))
        got = [
            r.discovery.identifier if isinstance(r, md.LookupResult.DISCOVERED) else r.code
            for r in results
        ]
        self.assertEqual(
            got,
            [
                "carol.example.com",
                "alice.example.com",
                md.ErrorCode.INVALID_IDENTIFIER,
                md.ErrorCode.DNS_BOGUS,
                "erin.example.com",
            ],
        )
        self.assertEqual(sorted(i for i, _, _ in heard), list(range(len(inputs))))
        self.assertEqual(sorted(done for _, done, _ in heard), list(range(1, len(inputs) + 1)))
        self.assertTrue(all(total == len(inputs) for _, _, total in heard))

    def test_a_batch_without_a_listener(self):
        d = md.Discoverer(options())
        results = run(d.discover_many(["bob.example.com"], None))
        self.assertIsInstance(results[0], md.LookupResult.DISCOVERED)


class Lifecycle(unittest.TestCase):
    """A DNS server that never answers keeps a lookup waiting."""

    def silent(self):
        return md.Discoverer(options(dns=WORLDS["silent_dns"], timeout_ms=60_000))

    def test_a_cancelled_lookup_ends_at_once(self):
        d = self.silent()

        async def cancel_one():
            task = asyncio.ensure_future(d.discover("alice.example.com"))
            await asyncio.sleep(0.2)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task

        run(cancel_one(), timeout=5)
        # Its work stopped, not only the wait.
        for _ in range(50):
            if d.calls_in_progress() == 0:
                break
            time.sleep(0.1)
        self.assertEqual(d.calls_in_progress(), 0)
        # The discoverer is still usable after a cancelled lookup.
        with self.assertRaises(md.DiscoveryError.InvalidIdentifier):
            run(d.discover("???"), timeout=5)

    def test_shutting_down_stops_lookups_in_progress_and_refuses_new_ones(self):
        d = self.silent()

        async def shut_down_while_waiting():
            task = asyncio.ensure_future(d.discover("alice.example.com"))
            await asyncio.sleep(0.2)
            d.shutdown()
            with self.assertRaises(md.DiscoveryError.ShutDown):
                await task

        run(shut_down_while_waiting(), timeout=5)
        self.assertTrue(d.is_shut_down())
        with self.assertRaises(md.DiscoveryError.ShutDown):
            run(d.discover("alice.example.com"), timeout=5)
        d.shutdown()  # idempotent

    def test_exiting_while_a_discoverer_thread_runs_python_code_is_clean(self):
        # A listener still running on the discoverer's thread when the
        # script ends: that thread then waits for the interpreter, which is
        # finalizing. Without the package's exit hook this aborted the
        # process (SIGABRT, "FATAL: exception not rethrown").
        script = textwrap.dedent(
            """
            import asyncio, threading, time
            import mimi_discovery as md
            from test_discovery import options

            inside = threading.Event()

            class Busy(md.ProgressListener):
                def on_result(self, index, result, done, total):
                    inside.set()
                    until = time.monotonic() + 1.0
                    while time.monotonic() < until:  # Python code, not a sleep
                        pass

            d = md.Discoverer(options())

            async def main():
                asyncio.ensure_future(d.discover_many(["carol.example.com"], Busy()))
                while not inside.is_set():
                    await asyncio.sleep(0.01)

            asyncio.run(main())
            print("the script ended")
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("the script ended", done.stdout)
        self.assertNotIn("FATAL", done.stderr)

    def test_one_discoverer_serves_several_threads(self):
        d = md.Discoverer(options())
        found = {}

        def look(identifier):
            found[identifier] = run(d.discover(identifier))

        threads = [
            threading.Thread(target=look, args=(i,))
            for i in ["alice.example.com", "bob.example.com", "erin.example.com"]
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(sorted(found), ["alice.example.com", "bob.example.com", "erin.example.com"])


if __name__ == "__main__":
    unittest.main()
