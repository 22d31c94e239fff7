"""API tokens: exchange e-mail and password for a named token (one per client), list your
tokens, revoke one, or revoke the one you are calling with. Failed attempts count towards
the same lockout as the login page. accounts.tokens holds the rules (expiry, revocation)."""
from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import audit, tokens
from accounts.models import ApiToken, normalise_email
from portal.api.views import AUTH_ERRORS, BAD_REQUEST, ERR, NOT_FOUND, ActiveUser

LOCKED = {429: OpenApiResponse(ERR, "Locked out after repeated failures")}


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=100, required=False, default="API client",
                                 help_text="What this token is for (e.g. the script or machine using it)")


class TokenInfoSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at"]


class IssuedTokenSerializer(TokenInfoSerializer):
    token = serializers.CharField(help_text="The key: send it as `Authorization: Token <key>`. Shown only once.")

    class Meta(TokenInfoSerializer.Meta):
        fields = ["token", *TokenInfoSerializer.Meta.fields]


def _locked() -> Response:
    return Response({"detail": "Too many failed attempts; try again later."}, status=429)


class TokenView(APIView):
    """POST: a new named token for this client. DELETE: revoke the token of this request."""

    permission_classes = [permissions.AllowAny]

    def get_authenticators(self):
        # POST takes credentials in the body: no session, hence no CSRF. DELETE needs a user.
        if getattr(self.request, "method", "POST") == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(request=TokenRequestSerializer, responses={200: IssuedTokenSerializer, **BAD_REQUEST, **LOCKED}, auth=[])
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = normalise_email(data.validated_data["email"])
        http_request = request._request
        if AxesProxyHandler.is_locked(http_request, {"username": email}):
            audit.record("login.locked_out", request=http_request, email=email, via="api")
            return _locked()
        user = authenticate(http_request, username=email, password=data.validated_data["password"])
        if user is None:
            if getattr(http_request, "axes_locked_out", False):
                # This failure reached the limit: answer in JSON rather than the HTML page.
                http_request.axes_locked_out = False
                return _locked()
            raise ValidationError({"non_field_errors": ["E-mail or password is wrong, or the account is inactive."]})
        token, key = tokens.issue(user, data.validated_data["name"], request=http_request)
        return Response(IssuedTokenSerializer({"token": key, **TokenInfoSerializer(token).data}).data)

    @extend_schema(responses={204: None, **AUTH_ERRORS})
    def delete(self, request: Request) -> Response:
        if not (request.user and request.user.is_authenticated):
            self.permission_denied(request)
        if isinstance(request.auth, ApiToken):
            tokens.revoke(request.auth, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenList(APIView):
    """Your tokens that still work (names and key prefixes; never the keys)."""

    permission_classes = [ActiveUser]

    @extend_schema(responses={200: TokenInfoSerializer(many=True), **AUTH_ERRORS})
    def get(self, request: Request) -> Response:
        return Response(TokenInfoSerializer(tokens.tokens_of(request.user), many=True).data)


class TokenDetail(APIView):
    """Revoke one of your tokens (404 for anyone else's)."""

    permission_classes = [ActiveUser]

    @extend_schema(responses={204: None, **AUTH_ERRORS, **NOT_FOUND})
    def delete(self, request: Request, pk: int) -> Response:
        token = get_object_or_404(ApiToken, pk=pk, user=request.user)
        tokens.revoke(token, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
