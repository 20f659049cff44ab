from django.urls import path

from voicechat import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("conversations/", views.ConversationListView.as_view(), name="conversation_list"),
    path("conversations/<int:pk>/", views.conversation_detail, name="conversation_detail"),
    path("conversations/<int:pk>/delete/", views.conversation_delete, name="conversation_delete"),
]
