import base64

from tests.support import SiteTestCase, database_outage, until_pool_reconnected

EAS = "/Microsoft-Server-ActiveSync"


def basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": [f"Basic {token}"]}


class OptionsTests(SiteTestCase):
    async def test_options(self):
        """OPTIONS with good credentials lists versions, commands and methods."""
        await self.create_account()
        response = await self.http("OPTIONS", EAS, headers=basic("alice@example.org", "correct horse"))
        self.assertEqual(response.code, 200)
        headers = response.headers
        self.assertEqual(headers.getRawHeaders("MS-ASProtocolVersions"), ["12.1,14.0,14.1,16.0,16.1"])
        self.assertEqual(headers.getRawHeaders("Allow"), ["OPTIONS,POST"])
        self.assertEqual(headers.getRawHeaders("MS-Server-ActiveSync"), ["16.1"])
        self.assertIsNotNone(headers.getRawHeaders("MS-ASProtocolCommands"))
        await response.content()

    async def test_header_spelling(self):
        """EAS header names go out in their conventional spelling."""
        await self.create_account()
        response = await self.http("OPTIONS", EAS, headers=basic("alice@example.org", "correct horse"))
        names = [name for name, _ in response.original.headers.getAllRawHeaders()]
        self.assertIn(b"MS-ASProtocolVersions", names)
        await response.content()

    async def test_no_credentials(self):
        """No credentials: 401 with a Basic challenge."""
        response = await self.http("OPTIONS", EAS)
        self.assertEqual(response.code, 401)
        self.assertTrue(response.headers.getRawHeaders("WWW-Authenticate")[0].startswith('Basic realm="bluesync"'))
        await response.content()

    async def test_wrong_password(self):
        """A wrong password, or an unknown user, is a 401."""
        await self.create_account()
        for user, password in (("alice@example.org", "wrong"), ("bob@example.org", "correct horse")):
            response = await self.http("OPTIONS", EAS, headers=basic(user, password))
            self.assertEqual(response.code, 401)
            await response.content()

    async def test_domain_and_case(self):
        """DOMAIN\\user and upper-case addresses log in."""
        await self.create_account()
        for user in ("EXAMPLE\\alice@example.org", "Alice@Example.org"):
            response = await self.http("OPTIONS", EAS, headers=basic(user, "correct horse"))
            self.assertEqual(response.code, 200)
            await response.content()

    async def test_disabled(self):
        """A disabled account is refused with 403, even with the right password cached."""
        await self.create_account()
        ok = await self.http("OPTIONS", EAS, headers=basic("alice@example.org", "correct horse"))
        self.assertEqual(ok.code, 200)
        await ok.content()
        await self.store.accounts.set_disabled("alice@example.org", True)
        response = await self.http("OPTIONS", EAS, headers=basic("alice@example.org", "correct horse"))
        self.assertEqual(response.code, 403)
        await response.content()

    async def test_password_change(self):
        """After a password change the old password no longer works."""
        from bluesync.passwords import hash_password

        await self.create_account()
        ok = await self.http("OPTIONS", EAS, headers=basic("alice@example.org", "correct horse"))
        self.assertEqual(ok.code, 200)
        await ok.content()
        await self.store.accounts.set_password_hash("alice@example.org", hash_password("new password"))
        old = await self.http("OPTIONS", EAS, headers=basic("alice@example.org", "correct horse"))
        self.assertEqual(old.code, 401)
        await old.content()

    async def test_garbage_authorization(self):
        """A malformed Authorization header is a 401, not an error."""
        for value in ("Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer x"):
            response = await self.http("OPTIONS", EAS, headers={"Authorization": [value]})
            self.assertEqual(response.code, 401)
            await response.content()


class PostTests(SiteTestCase):
    async def test_unimplemented_command(self):
        """A real EAS command that is not implemented is a 501."""
        await self.create_account()
        response = await self.http(
            "POST",
            EAS + "?Cmd=ValidateCert&User=alice&DeviceId=ABC123&DeviceType=iPhone",
            headers={**basic("alice@example.org", "correct horse"), "MS-ASProtocolVersion": ["14.1"]},
            data=b"",
        )
        self.assertEqual(response.code, 501)
        await response.content()

    async def test_bad_request_line(self):
        """A malformed request line is a 400, logged, never a 500."""
        await self.create_account()
        for query in ("?Cmd=Bogus&DeviceId=A&DeviceType=B", "?Cmd=Sync&DeviceType=B", "?%%%", "?AAAA"):
            response = await self.http(
                "POST", EAS + query, headers=basic("alice@example.org", "correct horse"), data=b""
            )
            self.assertEqual(response.code, 400, query)
            await response.content()
        self.flushLoggedErrors()

    async def test_unsupported_version(self):
        """An unsupported MS-ASProtocolVersion is a 400."""
        await self.create_account()
        response = await self.http(
            "POST",
            EAS + "?Cmd=Sync&User=alice&DeviceId=ABC&DeviceType=iPhone",
            headers={**basic("alice@example.org", "correct horse"), "MS-ASProtocolVersion": ["2.5"]},
            data=b"",
        )
        self.assertEqual(response.code, 400)
        await response.content()

    async def test_get_method(self):
        """GET on the EAS endpoint is a 405 naming the allowed methods."""
        await self.create_account()
        response = await self.http("GET", EAS, headers=basic("alice@example.org", "correct horse"))
        self.assertEqual(response.code, 405)
        await response.content()


class HealthTests(SiteTestCase):
    async def test_healthz(self):
        """/healthz answers 200 while the database answers."""
        response = await self.http("GET", "/healthz")
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), b"ok\n")

    async def test_healthz_database_down(self):
        """/healthz answers 503 while the connections are dead, 200 once the pool reconnects."""
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        import psycopg2

        # txpostgres logs the lost connections it notices while idle.
        self.addCleanup(self.flushLoggedErrors, psycopg2.OperationalError)
        lift = database_outage(self, self.dsn)
        codes = []
        for _ in range(40):
            response = await self.http("GET", "/healthz")
            codes.append(response.code)
            await response.content()
            if codes[-1] == 503:
                break
            await deferLater(reactor, 0.1, lambda: None)
        lift()
        for _ in range(80):
            response = await self.http("GET", "/healthz")
            codes.append(response.code)
            await response.content()
            if codes[-1] == 200:
                break
            await deferLater(reactor, 0.25, lambda: None)
        await until_pool_reconnected(self.database)
        self.assertIn(503, codes)
        self.assertEqual(codes[-1], 200)
