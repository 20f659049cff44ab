"""Static files in production: hashed, compressed names from `collectstatic`, served by WhiteNoise."""

from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.responders import StaticFile
from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's hashed and gzipped storage, with ES module imports rewritten to the hashed names.

    The page's modules import each other by relative path (`import ... from './pcm.js';`):
    without the rewrite a hashed main.js would import the plain-named files, which are neither
    cached for long nor guaranteed to match it.
    """

    support_js_module_import_aggregation = True


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise's middleware, answering with the file's bytes rather than a file stream.

    Under ASGI, Django reads a synchronous file stream whole in a worker thread anyway (and
    warns that it must); the static files are small, so they are read once here, in the thread
    this synchronous middleware already runs in, and sent as one body.
    """

    @staticmethod
    def serve(static_file: StaticFile, request: HttpRequest) -> HttpResponse:
        served = static_file.get_response(request.method, request.META)
        if served.file is None:  # HEAD, 304, 405 or 416: headers only
            body = b""
        else:
            with served.file:
                body = served.file.read()
        response = HttpResponse(body, status=int(served.status))
        del response["Content-Type"]  # WhiteNoise's own headers say it
        for name, value in served.headers:
            response[name] = value
        return response
